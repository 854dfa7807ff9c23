/**
 * Per-request loggers: made only when a request writes a line, and then the
 * same as Fastify's own (request id bound, secrets redacted, route levels kept).
 */
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { AccessLogController, lazyChildLoggerFactory, loggerOptions } from '../../gateway/observability/logging.js'

let app: FastifyInstance | undefined
afterEach(async () => { await app?.close() })

async function appLogging (level: string) {
  const lines: Array<Record<string, unknown>> = []
  let children = 0
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const options = loggerOptions(level, 'test') as Record<string, unknown>
  app = Fastify({ logger: { ...options, stream, onChild: () => { children += 1 } }, childLoggerFactory: lazyChildLoggerFactory, logController: new AccessLogController() })
  app.get('/quiet', async (request) => {
    request.log.info('routine detail')
    return { ok: true }
  })
  app.get('/loud', async (request) => {
    request.log.warn({ accessToken: 'secret-token', detail: { refreshToken: 'secret-refresh' } }, 'something odd')
    request.log.warn('and again')
    return { ok: true }
  })
  app.get('/probe', { logLevel: 'error' }, async (request) => {
    request.log.warn('below this route\'s level')
    return { ok: true }
  })
  await app.ready()
  return { app, lines, children: () => children }
}

describe('per-request loggers', () => {
  it('at warn, a request that logs nothing below warn makes no child logger and writes nothing', async () => {
    const { app, lines, children } = await appLogging('warn')
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/quiet' })).statusCode).toBe(200)
    expect(children()).toBe(0)
    expect(lines).toEqual([])
  })

  it('a line that is written carries the request id, once per request, with secrets redacted', async () => {
    const { app, lines, children } = await appLogging('warn')
    await app.inject({ url: '/loud' })
    expect(children()).toBe(1)
    expect(lines.map(line => line.msg)).toEqual(['something odd', 'and again'])
    expect(lines[0]).toMatchObject({ reqId: expect.any(String), accessToken: '[redacted]', detail: { refreshToken: '[redacted]' } })
    expect(lines[1]?.reqId).toBe(lines[0]?.reqId)
    expect(JSON.stringify(lines)).not.toContain('secret-')
  })

  it('writes one access line per request at info (method, path without query, client, status, time), and keeps a route\'s own level', async () => {
    const { app, lines } = await appLogging('info')
    await app.inject({ url: '/quiet?code=secret-code' })
    expect(lines.map(line => line.msg)).toEqual(['routine detail', 'request completed'])
    expect(lines[1]).toMatchObject({
      reqId: lines[0]?.reqId,
      req: { method: 'GET', path: '/quiet', ip: expect.any(String) },
      res: { statusCode: 200 },
      responseTime: expect.any(Number),
    })
    expect(JSON.stringify(lines)).not.toContain('secret-')
    lines.length = 0
    await app.inject({ url: '/probe' })
    expect(lines).toEqual([])
  })
})
