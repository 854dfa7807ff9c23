/**
 * HTTP/1.1 over a bare TCP socket, for requests no well-behaved client would
 * send: conflicting framing headers, CR/LF in values, oversized headers,
 * pipelined requests. Sends the bytes as given and collects everything the
 * server answers until it closes the connection or goes quiet.
 */
import { connect } from 'node:net'

export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  text: string
  /** Status codes of every response found in the text, in order. */
  statuses: number[]
  /** Whether the server closed the connection (rather than us giving up waiting). */
  closedByServer: boolean
}

/**
 * Writes `request` to the server at `baseUrl` and reads until it closes, or
 * until `quietMs` pass without data once something arrived (`firstByteMs` before).
 */
export async function rawExchange (baseUrl: string, request: string | Buffer, quietMs = 300, firstByteMs = 5000): Promise<RawExchange> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) })
    const chunks: Buffer[] = []
    let closedByServer = false
    let timer: NodeJS.Timeout | undefined
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
      resolve({ text, statuses, closedByServer })
    }
    const quiet = (ms: number) => {
      clearTimeout(timer)
      timer = setTimeout(finish, ms)
    }
    socket.on('connect', () => {
      socket.write(request)
      quiet(firstByteMs)
    })
    socket.on('data', (chunk) => {
      chunks.push(chunk)
      quiet(quietMs)
    })
    socket.on('end', () => { closedByServer = true })
    socket.on('close', () => {
      closedByServer = true
      finish()
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after the server answered is still a close.
      if (error.code === 'ECONNRESET') return
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** The JSON body of the first response in a raw exchange. */
export function firstBody (exchange: RawExchange): unknown {
  const start = exchange.text.indexOf('\r\n\r\n')
  const head = exchange.text.slice(0, start)
  const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? NaN)
  const body = exchange.text.slice(start + 4, Number.isNaN(length) ? undefined : start + 4 + length)
  return JSON.parse(body)
}
