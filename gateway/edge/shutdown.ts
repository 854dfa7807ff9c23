/**
 * A stopping gateway's graceful shutdown, in the contract's order: readiness
 * fails at once and the public listener goes on serving for `delayMs`
 * (answers say `Connection: close`), long enough for load balancers to see
 * the failed readiness and send no more; only then is the listener closed
 * (new connections refused), requests in flight finish, open WebSockets are
 * closed with 1001 (going away), and the resources (Redis last) are closed.
 *
 * Closing the listener first and relying on the balancer to notice would
 * lose requests: a connection the kernel has accepted but the process not yet
 * read when the listener closes is reset unanswered, and the balancer cannot
 * know whether the request was processed.
 *
 * The whole sequence's deadline (`SHUTDOWN_TIMEOUT` past the delay) is
 * enforced by the process edge (server.ts), which owns the exit code.
 */
export interface Stoppable {
  /** Fails readiness; every answer closes its connection; the listener keeps accepting. */
  drain (): void
  /** Stops accepting, lets requests in flight finish, closes every resource. */
  close (): Promise<void>
}

interface ShutdownLog {
  info (fields: object, message: string): void
}

export interface ShutdownOptions {
  /** How long the draining listener keeps accepting, for load balancers to take it out of rotation. */
  delayMs: number
  log: ShutdownLog
}

export async function shutDownGracefully (gateway: Stoppable, { delayMs, log }: ShutdownOptions): Promise<void> {
  gateway.drain()
  log.info({ shutdown: 'draining', delayMs }, 'draining: readiness fails; the listener closes after the delay')
  await new Promise(resolve => setTimeout(resolve, delayMs))
  log.info({ shutdown: 'closing' }, 'closing the listener: requests in flight finish, then Redis is closed')
  await gateway.close()
  log.info({ shutdown: 'closed' }, 'closed')
}
