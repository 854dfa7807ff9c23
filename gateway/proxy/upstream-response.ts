/**
 * How the upstream's answer body reaches the browser, once its status and
 * headers are on the reply: a small answer of declared length is read whole and
 * sent in one piece; anything else (an answer without `Content-Length`, such as
 * a stream of server-sent events, or a larger one) is piped through as it comes.
 *
 * Why: piping a body through Node streams (undici's Readable into Fastify into
 * the ServerResponse) cost about 12 % of the gateway's CPU per request for a
 * typical JSON answer of a few hundred bytes (bench/README.md). nginx buffers
 * upstream answers by default for the same reason (`proxy_buffering`).
 *
 * Reading a small answer whole also means an upstream that fails half-way
 * through it gets the browser a clean 502 (or 504 when its body stalls past the
 * route's timeout) instead of a 200 cut short.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'

/** Answers up to this many bytes (by their `Content-Length`) are read whole before anything is sent. */
export const WHOLE_ANSWER_LIMIT = 64 * 1024

export interface UpstreamAnswer {
  headers: IncomingHttpHeaders
  /** Typed as an IncomingMessage by @fastify/reply-from; with undici it is undici's body Readable. */
  stream: Readable
}

/** What of a Fastify reply this needs (any server flavour @fastify/reply-from's hooks are typed for). */
export interface AnswerReply {
  readonly sent: boolean
  readonly raw: NodeJS.EventEmitter & { readonly destroyed?: boolean }
  send (payload: unknown): unknown
}

/**
 * Sends the answer's body on `reply`. When a small answer's body breaks off before anything was
 * sent, `fail` answers instead (nothing is sent when the browser has gone).
 */
export function sendUpstreamAnswer (method: string, reply: AnswerReply, answer: UpstreamAnswer, fail: (error: Error) => void): void {
  const { stream } = answer
  const length = Number(answer.headers['content-length'])
  if (method === 'HEAD' || !(length <= WHOLE_ANSWER_LIMIT)) {
    reply.send(stream)
    return
  }
  const chunks: Buffer[] = []
  // A browser that hangs up before the body is in stops the read (and frees the upstream connection).
  const abandon = () => stream.destroy()
  reply.raw.once('close', abandon)
  stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  stream.once('end', () => {
    reply.raw.off('close', abandon)
    reply.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
  })
  stream.once('error', (error: Error) => {
    reply.raw.off('close', abandon)
    if (!reply.sent && reply.raw.destroyed !== true) fail(error)
  })
}
