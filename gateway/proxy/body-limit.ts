/**
 * The body size limit of proxied requests. A proxied body streams from the
 * browser to the upstream (upstream-exchange.ts) without being parsed, so
 * Fastify's own `bodyLimit` never sees it: a declared `Content-Length` over the
 * limit is refused by the gate before anything is forwarded, and a body of
 * unknown length (chunked) is counted while it streams and cut off, upstream
 * request included, past the limit.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { causeOfType } from '../errors.js'

/** Raised inside the forwarded body stream once it passes the limit. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError'
  constructor (readonly limit: number) {
    super(`request body exceeds ${limit} bytes`)
  }
}

/** Whether a declared Content-Length exceeds the limit. Duplicates and garbage never get here: Node's parser refuses them. */
export function declaredLengthExceeds (contentLength: string | undefined, limit: number): boolean {
  if (contentLength === undefined) return false
  const length = Number(contentLength)
  return !Number.isSafeInteger(length) || length > limit
}

/** A pass-through that fails with BodyTooLargeError as soon as more than `limit` bytes went through. */
export function countingStream (limit: number): Transform {
  let seen = 0
  return new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length
      if (seen > limit) callback(new BodyTooLargeError(limit))
      else callback(null, chunk)
    },
  })
}

/** `source` through a counting stream; an error of either side ends both. */
export function limitBody (source: Readable, limit: number): Transform {
  return pipeChecked(source, countingStream(limit))
}

/**
 * `source` piped into `check`, a Transform that may fail the body: an error of `source` destroys
 * `check`, and an error of `check` only unpipes `source`, whose socket must still carry the answer.
 */
export function pipeChecked (source: Readable, check: Transform): Transform {
  source.on('error', (error) => check.destroy(error))
  check.on('error', () => source.unpipe(check))
  return source.pipe(check)
}

/** Whether an error is, or was caused by, the body limit. */
export function isBodyTooLarge (error: unknown): boolean {
  return causeOfType(error, BodyTooLargeError) !== undefined
}
