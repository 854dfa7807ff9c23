/**
 * An OTLP/HTTP trace receiver on loopback, standing in for an OpenTelemetry
 * Collector: it accepts `POST /v1/traces` in the JSON encoding and keeps
 * every span it was sent, with each body as it arrived (to search for what
 * must never be in a trace).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

type OtlpValue = { stringValue?: string, intValue?: string | number, boolValue?: boolean, doubleValue?: number }

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes?: Array<{ key: string, value: OtlpValue }>
  status?: { code?: number }
}

interface OtlpRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string, value: OtlpValue }> }
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>
  }>
}

/** OTLP's span kinds. */
export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** Undefined for a trace's root (or a span continuing a remote parent: then the remote span's id). */
  parentSpanId: string | undefined
  name: string
  kind: number
  attributes: Record<string, string | number | boolean | undefined>
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number
  resource: Record<string, string | number | boolean | undefined>
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds `/v1/traces`). */
  readonly url: string
  readonly spans: ReceivedSpan[]
  /** Every request body received, as text. */
  readonly bodies: string[]
  /** Resolves with the spans of `traceId` once `ready` holds for them; rejects after `timeoutMs`. */
  trace (traceId: string, ready: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>
  close (): Promise<void>
}

const valueOf = (value: OtlpValue) => value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue

const attributesOf = (list: Array<{ key: string, value: OtlpValue }> = []) =>
  Object.fromEntries(list.map(({ key, value }) => [key, valueOf(value)]))

export async function startOtlpReceiver (): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const bodies: string[] = []
  const arrivals = new Set<() => void>()
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces' || !String(request.headers['content-type']).startsWith('application/json')) {
        response.writeHead(404).end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      bodies.push(body)
      for (const resourceSpans of (JSON.parse(body) as OtlpRequest).resourceSpans ?? []) {
        const resource = attributesOf(resourceSpans.resource?.attributes)
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              statusCode: span.status?.code ?? 0,
              resource,
            })
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      for (const arrived of arrivals) arrived()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    trace (traceId, ready, timeoutMs = 10_000) {
      const current = () => spans.filter(span => span.traceId === traceId)
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = current()
          if (!ready(found)) return
          arrivals.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
        const timer = setTimeout(() => {
          arrivals.delete(check)
          reject(new Error(`trace ${traceId} incomplete after ${timeoutMs} ms: ${JSON.stringify(current().map(s => s.name))}`))
        }, timeoutMs)
        arrivals.add(check)
        check()
      })
    },
    async close () {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}
