/**
 * An HTTP listener that can go away and come back on the same port, to
 * simulate an outage of the IdP or the API while every bit of in-process state
 * (keys, grants, users) survives.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export class RestartableListener {
  readonly #server: Server
  readonly #host: string
  #port: number
  #closed = false

  constructor (server: Server, host: string, port: number) {
    this.#server = server
    this.#host = host
    this.#port = port
  }

  /** The bound port; before the first start(), the requested one (0 = any free port). */
  get port (): number {
    return this.#port
  }

  get listening (): boolean {
    return this.#server.listening
  }

  /** Listens on the host and port; after a stop(), the port is the one first bound. */
  async start (): Promise<void> {
    if (this.#closed) throw new Error('listener closed for good')
    if (this.#server.listening) return
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error)
      this.#server.once('error', onError)
      this.#server.listen(this.#port, this.#host, () => {
        this.#server.off('error', onError)
        resolve()
      })
    })
    this.#port = (this.#server.address() as AddressInfo).port
  }

  /** Refuses new connections and cuts the open ones, in-flight requests included, like a crashed server. */
  async stop (): Promise<void> {
    if (!this.#server.listening) return
    const closed = new Promise<void>(resolve => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  /** stop(), and start() is refused from now on. */
  async close (): Promise<void> {
    this.#closed = true
    await this.stop()
  }
}
