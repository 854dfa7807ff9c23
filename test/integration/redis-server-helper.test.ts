import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { createTlsFiles } from '../helpers/redis-tls.js'

async function startServer (options?: Parameters<typeof startRedisServer>[0]): Promise<RedisServer> {
  const server = await startRedisServer(options)
  onTestFinished(() => server.close())
  return server
}

function client (server: RedisServer, options: { commandTimeout?: number } = {}): Redis {
  const redis = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, ...options })
  onTestFinished(() => { redis.disconnect() })
  return redis
}

async function connectionError (port: number): Promise<string | undefined> {
  const socket = connect({ port, host: '127.0.0.1' })
  try {
    await once(socket, 'connect')
    return undefined
  } catch (err) {
    return (err as NodeJS.ErrnoException).code
  } finally {
    socket.destroy()
  }
}

describe('startRedisServer', () => {
  it('starts a private server on a free port of 127.0.0.1 that answers', async () => {
    const server = await startServer()
    expect(server.port).not.toBe(6379)
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(await client(server).ping()).toBe('PONG')
  })

  it('gives each server its own port', async () => {
    const [a, b] = await Promise.all([startServer(), startServer()])
    expect(a.port).not.toBe(b.port)
  })

  it('refuses connections once stopped', async () => {
    const server = await startServer()
    await server.stop()
    expect(await connectionError(server.port)).toBe('ECONNREFUSED')
  })

  it('restarts on the same port and keeps the data when persistence is on', async () => {
    const server = await startServer({ persistence: true })
    const before = client(server)
    await before.set('kept', 'yes')
    await before.quit()

    await server.stop()
    await server.start()
    expect(await client(server).get('kept')).toBe('yes')
  })

  it('keeps the data across a crash when persistence is on', async () => {
    const server = await startServer({ persistence: true })
    const before = client(server)
    await before.set('kept', 'yes')
    before.disconnect()

    await server.kill()
    expect(await connectionError(server.port)).toBe('ECONNREFUSED')
    await server.start()
    expect(await client(server).get('kept')).toBe('yes')
  })

  it('starts empty after a restart without persistence', async () => {
    const server = await startServer()
    const before = client(server)
    await before.set('lost', 'yes')
    await before.quit()

    await server.stop()
    await server.start()
    expect(await client(server).get('lost')).toBeNull()
  })

  it('serves TLS on a second port and ACL users when asked, the plain port still open to the default user', async () => {
    const tls = await createTlsFiles()
    onTestFinished(() => tls.close())
    const server = await startServer({ tls, users: ['app on >app-password ~app:* +@all'] })
    expect(server.tlsPort).toBeGreaterThan(0)
    expect(server.tlsPort).not.toBe(server.port)
    const secure = new Redis({ port: server.tlsPort, host: '127.0.0.1', username: 'app', password: 'app-password', tls: { ca: await readFile(tls.ca) }, maxRetriesPerRequest: 0 })
    onTestFinished(() => { secure.disconnect() })
    expect(await secure.set('app:x', '1')).toBe('OK')
    await expect(secure.set('other:x', '1')).rejects.toThrow(/NOPERM/)
    expect(await client(server).get('app:x')).toBe('1')
  })

  it('has no TLS port unless asked', async () => {
    expect((await startServer()).tlsPort).toBeUndefined()
  })

  it('answers nothing while paused, and again once resumed', async () => {
    const server = await startServer()
    const redis = client(server, { commandTimeout: 200 })
    await redis.ping()

    server.pause()
    await expect(redis.ping()).rejects.toThrow(/timed out/i)
    server.resume()
    expect(await redis.ping()).toBe('PONG')
  })
})
