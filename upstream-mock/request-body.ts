import type { IncomingMessage } from 'node:http'

export class BodyTooLargeError extends Error {
  constructor (limit: number) {
    super(`request body larger than ${limit} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

export async function readRequestBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let received = 0
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    received += buffer.length
    if (received > limit) throw new BodyTooLargeError(limit)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks, received)
}
