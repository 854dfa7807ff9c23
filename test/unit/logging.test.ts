/**
 * Per-request loggers: made only when a request writes a line, and then the
 * same as Fastify's own (request id bound, secrets redacted, route levels kept).
 */
import { Writable } from 'node:stream'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { AccessLogController, lazyChildLoggerFactory, loggerOptions } from '../../gateway/observability/logging.js'
import requestScope from '../../gateway/observability/request-scope.js'

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
  await app.register(requestScope)
  const shared = app.log
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
  // Code that does not hold the request (an audit event, a shared resource) logs through the app's logger.
  app.get('/shared', async () => {
    await new Promise(resolve => setTimeout(resolve, 1))
    shared.warn({ audit: 'example' }, 'written for a request it does not know')
    return { ok: true }
  })
  app.post('/shared', async () => {
    shared.warn({ audit: 'example' }, 'after a body read in the socket\'s callbacks')
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

describe('lines written during a request through the app\'s logger', () => {
  it('carry that request\'s id (and a line outside any request carries none), without making a per-request logger', async () => {
    const { app, lines, children } = await appLogging('warn')
    await Promise.all([app.inject({ url: '/shared' }), app.inject({ url: '/shared' }), app.inject({ url: '/loud' })])
    const shared = lines.filter(line => line.audit === 'example')
    expect(shared).toHaveLength(2)
    expect(new Set(shared.map(line => line.reqId)).size).toBe(2)
    for (const line of shared) expect(line.reqId).toMatch(/^req-/)
    // Only /loud made one; and its own lines name its id once, not twice.
    expect(children()).toBe(1)
    expect(lines.filter(line => line.msg === 'something odd').map(line => Object.keys(line).filter(key => key === 'reqId'))).toEqual([['reqId']])
    lines.length = 0
    app.log.warn('at start-up')
    expect(lines[0]?.reqId).toBeUndefined()
  })

  it('still carry it when the body arrives after the request began, in a later read of the socket', async () => {
    const { app, lines } = await appLogging('warn')
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const sent = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/shared', headers: { 'content-type': 'application/json' } }, (response) => {
        response.resume()
        response.on('end', () => resolve(response.statusCode))
      })
      sent.on('error', reject)
      sent.write('{"some":')
      setTimeout(() => sent.end('"body"}'), 30)
    })
    expect(status).toBe(200)
    expect(lines.find(line => line.audit === 'example')?.reqId).toMatch(/^req-/)
  })
})
