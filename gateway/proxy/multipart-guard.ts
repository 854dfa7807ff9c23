/**
 * A pass-through for a multipart body that reads the header block of each
 * part as the body streams, and can stop the body before a part it refuses
 * has been passed on whole. The body is never buffered: what is held back is
 * the start of a part's headers until they end (at most MAX_PART_HEADER_BYTES),
 * or a few bytes that could be the start of a delimiter.
 *
 * A delimiter is `--boundary` wherever it appears (even not at the start of a
 * line, where a strict parser would not see one); its header block is the text
 * after the rest of its line, up to an empty line (CRLF or bare LF, as PHP
 * accepts). Reading more places as part headers than a parser would can only
 * refuse more, never let a part slip through.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { InvalidRequest } from '../errors.js'

/** Longest header block of one part that is checked; a longer one is refused. */
export const MAX_PART_HEADER_BYTES = 8 * 1024

const LF = 0x0a
const CR = 0x0d

/** What the guard thinks of one part's header block (latin1): undefined to let it pass, or the error to stop the body with. */
export type PartHeaderCheck = (headers: string) => Error | undefined

/** Where the header block that starts at `start` (just after a delimiter) ends, or -1 if `data` ends first. */
function headerBlockEnd (data: Buffer, start: number): number {
  // The rest of the delimiter's own line (CRLF, `--` of the last one, or padding) is not a header.
  let lineStart = data.indexOf(LF, start)
  if (lineStart === -1) return -1
  for (;;) {
    lineStart += 1
    const lineEnd = data.indexOf(LF, lineStart)
    if (lineEnd === -1) return -1
    const length = lineEnd - lineStart - (lineEnd > lineStart && data[lineEnd - 1] === CR ? 1 : 0)
    if (length === 0) return lineEnd + 1
    lineStart = lineEnd
  }
}

/** A Transform that passes a multipart body through unchanged, but fails with `check`'s error at the first part it refuses. */
export function multipartGuard (boundary: string, check: PartHeaderCheck): Transform {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1')
  const tooLong = () => new InvalidRequest(`A part of the multipart body has more than ${MAX_PART_HEADER_BYTES} bytes of headers`)
  // Bytes not yet passed on; scanning starts at their beginning, outside any header block.
  let held = Buffer.alloc(0)

  /** How much of `data` may go on, or the error that stops the body. `last`: no more bytes will come. */
  function scan (data: Buffer, last: boolean): number | Error {
    let position = 0
    for (;;) {
      const at = data.indexOf(delimiter, position)
      if (at === -1) return last ? data.length : Math.max(position, data.length - (delimiter.length - 1))
      const start = at + delimiter.length
      const end = headerBlockEnd(data, start)
      if (end === -1) {
        if (data.length - start > MAX_PART_HEADER_BYTES) return tooLong()
        // The body ends inside these headers: what there is of them is all any parser gets.
        if (last) return check(data.toString('latin1', start)) ?? data.length
        return at
      }
      if (end - start > MAX_PART_HEADER_BYTES) return tooLong()
      const refused = check(data.toString('latin1', start, end))
      if (refused) return refused
      position = end
    }
  }

  function passOn (stream: Transform, data: Buffer, last: boolean, callback: TransformCallback): void {
    const verdict = scan(data, last)
    if (verdict instanceof Error) {
      callback(verdict)
      return
    }
    if (verdict > 0) stream.push(verdict === data.length ? data : data.subarray(0, verdict))
    // A copy, so a small remainder does not keep a whole chunk alive.
    held = verdict === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(verdict))
    callback()
  }

  return new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      passOn(this, held.length === 0 ? chunk : Buffer.concat([held, chunk]), false, callback)
    },
    flush (callback: TransformCallback) {
      passOn(this, held, true, callback)
    },
  })
}
