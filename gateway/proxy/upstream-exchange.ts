/**
 * One admitted request's trip to its upstream and back, on undici's dispatch
 * API: the request goes out with the headers and body the proxy plugin chose,
 * and the answer comes back to the browser through a Fastify reply.
 *
 * A small answer of declared length (and any answer that has no body: HEAD,
 * 204, 304) is read whole and sent in one piece; anything else (an answer
 * without `Content-Length`, such as a stream of server-sent events, or a larger
 * one) is streamed through as it comes, with backpressure.
 *
 * Why not @fastify/reply-from, which @fastify/http-proxy is built on: per
 * request it parses and caches a URL, copies the headers three times and wraps
 * the answer in a Readable that is then piped again, which costs markedly more
 * CPU per small answer than one dispatch (the measurement is in
 * bench/HISTORY.md).
 * nginx buffers small upstream answers by default for the same reason
 * (`proxy_buffering`). WebSocket handshakes still go through
 * @fastify/http-proxy.
 *
 * Reading a small answer whole also means an upstream that fails half-way
 * through it gets the browser a clean error (502, or 504 when the body stalls
 * past the route's timeout) instead of a 200 cut short.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'

/** Answers up to this many bytes (by their `Content-Length`) are read whole before anything is sent. */
export const WHOLE_ANSWER_LIMIT = 64 * 1024

export interface UpstreamRequest {
  /** The upstream's origin, `scheme://host:port`. */
  origin: string
  /** Path and query, already canonical and encoded. */
  path: string
  method: string
  headers: IncomingHttpHeaders
  /** Streamed as it comes, or (a form the proxy had to read whole) sent in one piece. */
  body: Readable | Buffer | null
  /** Longest wait for the answer's head, and longest silence within its body. */
  timeoutMs: number
}

/** What of a Fastify reply an exchange needs: the response, whose `close` says the browser has gone. */
export interface AnswerReply {
  readonly raw: NodeJS.EventEmitter
}

/**
 * Where the answer goes. At most one of `answer` or `fail` is called, once; neither once the browser
 * has gone (the upstream request is aborted instead).
 */
export interface AnswerSink {
  /** The upstream answered: its status, its headers as received, and the body (whole, or as a stream). */
  answer (statusCode: number, headers: IncomingHttpHeaders, body: Buffer | Readable | undefined): void
  /** No answer could be had: the upstream was unreachable, reset, too slow, or broke off a small answer. */
  fail (error: Error): void
}

/** The browser went away: nobody is left to answer. */
class BrowserGone extends Error {
  override name = 'BrowserGone'
  constructor () { super('the browser closed the connection before the answer was sent') }
}

/** A body streamed from the upstream to the browser; reading it lets the upstream connection go on. */
class StreamedBody extends Readable {
  constructor (private readonly controller: Dispatcher.DispatchController) { super() }
  override _read (): void { this.controller.resume() }
  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before its end (the browser left, or Fastify gave up): stop the upstream too.
    if (!this.readableEnded && !this.controller.aborted) this.controller.abort(error ?? new BrowserGone())
    callback(error)
  }
}

/** The handler undici calls back as the answer arrives. */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null
  private statusCode = 0
  private headers: IncomingHttpHeaders = {}
  private chunks: Buffer[] | null = null
  private streamed: StreamedBody | null = null
  private settled = false
  private readonly onBrowserClose = () => this.abandon()

  constructor (private readonly method: string, private readonly reply: AnswerReply, private readonly sink: AnswerSink) {
    reply.raw.once('close', this.onBrowserClose)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.settled) controller.abort(new BrowserGone())
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return // an informational answer (100 Continue, 103 Early Hints): the real one follows
    this.statusCode = statusCode
    this.headers = headers
    if (this.readsWhole()) {
      this.chunks = []
      return
    }
    // From here on the browser's connection belongs to the stream: Fastify destroys it (and so
    // the upstream request) when the browser leaves.
    this.settle()
    this.streamed = new StreamedBody(controller)
    this.sink.answer(statusCode, headers, this.streamed)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.streamed) {
      if (!this.streamed.push(chunk)) controller.pause()
    } else {
      this.chunks?.push(chunk)
    }
  }

  onResponseEnd (): void {
    if (this.streamed) {
      this.streamed.push(null)
      return
    }
    if (this.settled) return
    this.settle()
    const chunks = this.chunks ?? []
    const body = chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    this.sink.answer(this.statusCode, this.headers, body)
  }

  onResponseError (_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.streamed) {
      this.streamed.destroy(error)
      return
    }
    if (this.settled) return
    this.settle()
    this.sink.fail(error)
  }

  private readsWhole (): boolean {
    if (this.method === 'HEAD' || this.statusCode === 204 || this.statusCode === 304) return true
    const length = Number(this.headers['content-length'])
    return length <= WHOLE_ANSWER_LIMIT
  }

  private settle (): void {
    this.settled = true
    this.reply.raw.off('close', this.onBrowserClose)
  }

  /** The browser hung up before its answer was sent: stop the upstream request now, not at its timeout. */
  private abandon (): void {
    if (this.settled) return
    this.settle()
    if (this.controller && !this.controller.aborted) this.controller.abort(new BrowserGone())
  }
}

/** Sends `request` upstream through `dispatcher`; the outcome reaches `sink`. */
export function exchangeWithUpstream (dispatcher: Dispatcher, request: UpstreamRequest, reply: AnswerReply, sink: AnswerSink): void {
  const exchange = new Exchange(request.method, reply, sink)
  try {
    dispatcher.dispatch({
      origin: request.origin,
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers,
      body: request.body,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
    }, exchange)
  } catch (error) {
    // undici refuses some requests outright (a header value it will not send, say).
    exchange.onResponseError(null, error as Error)
  }
}
