/**
 * The body size limit of proxied requests. @fastify/http-proxy hands the raw
 * request stream to the upstream untouched, so Fastify's own `bodyLimit` never
 * sees it: a declared `Content-Length` over the limit is refused before
 * anything is forwarded, and a body of unknown length (chunked) is counted
 * while it streams and cut off, upstream request included, past the limit.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'

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
  const counted = countingStream(limit)
  source.on('error', (error) => counted.destroy(error))
  counted.on('error', () => source.unpipe(counted))
  return source.pipe(counted)
}

/** Whether an error is, or was caused by, the body limit. */
export function isBodyTooLarge (error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof BodyTooLargeError) return true
  }
  return false
}
