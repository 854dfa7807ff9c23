/**
 * The log lines of a gateway under test (`GatewayDeps.logStream`), parsed, so
 * tests can read its audit events.
 */
export type LogLine = Record<string, unknown>

export interface LogCapture {
  /** Every line both listeners logged so far, oldest first. */
  readonly lines: LogLine[]
  /** Pass as `deps.logStream`. */
  readonly stream: { write (chunk: string): void }
}

export function captureLogLines (): LogCapture {
  const lines: LogLine[] = []
  return {
    lines,
    stream: {
      write (chunk) {
        for (const text of chunk.split('\n')) if (text) lines.push(JSON.parse(text) as LogLine)
      },
    },
  }
}
