import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type autocannon from 'autocannon'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COOKIE_PLACEHOLDER, mixSource, rotationSource, sessionPerRequest, type CookieSource } from '../../bench/session-requests.js'

/** What autocannon's client offers setupClient: the request it would send, built from the headers it was given. */
function connection (headers: Record<string, string>): { getRequestBuffer (): Buffer } {
  const request = Buffer.from(`GET /api/orders HTTP/1.1\r\nhost: 127.0.0.1\r\ncookie: ${headers.cookie}\r\n\r\n`, 'latin1')
  return { getRequestBuffer: () => request }
}

/** The cookie of each of `count` requests a connection sends. */
function sent (client: { getRequestBuffer (): Buffer }, count: number): string[] {
  return Array.from({ length: count }, () => /^cookie: (.*)$/m.exec(client.getRequestBuffer().toString('latin1'))?.[1] as string)
}

function connect (source: CookieSource) {
  const sessions = sessionPerRequest(source, { accept: 'application/json', cookie: 'one=session' })
  const client = connection(sessions.headers)
  sessions.setupClient(client as unknown as autocannon.Client)
  return { sessions, client }
}

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'bench-session-requests-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('requests that each carry a picked session\'s cookie', () => {
  it('gives autocannon a placeholder for the cookie, and sends every request with a session of the mix in its place', async () => {
    const file = join(dir, 'mix.txt')
    await writeFile(file, 'bff=s0\nbff=s1\nbff=s2\n')
    const { sessions, client } = connect(mixSource({ file, distribution: 'uniform' }))
    expect(sessions.headers).toEqual({ accept: 'application/json', cookie: COOKIE_PLACEHOLDER })
    const cookies = sent(client, 300)
    expect(new Set(cookies)).toEqual(new Set(['bff=s0', 'bff=s1', 'bff=s2']))
    expect(sessions.picks).toBe(300)
  })

  it('sends the refresh contender\'s rotation the same way: a newcomer first, then the sessions in use', () => {
    const source = rotationSource({ active: ['bff=a0', 'bff=a1'], arriving: ['bff=n0', 'bff=n1'], perSecond: 0.001, untilSeconds: 60 })
    const { sessions, client } = connect(source)
    const cookies = sent(client, 200)
    // The first arrival is due at once; the next not for 1 000 s.
    expect(cookies[0]).toBe('bff=n0')
    expect(new Set(cookies)).toEqual(new Set(['bff=a0', 'bff=a1', 'bff=n0']))
    expect(source.arrived).toBe(1)
    expect(sessions.picks).toBe(200)
  })

  it('refuses a request that does not carry the placeholder once', () => {
    const sessions = sessionPerRequest(rotationSource({ active: ['bff=a0'], arriving: [], perSecond: 1, untilSeconds: 1 }), {})
    const client = connection({ cookie: 'no-placeholder' })
    expect(() => sessions.setupClient(client as unknown as autocannon.Client)).toThrow(/placeholder/)
  })
})
