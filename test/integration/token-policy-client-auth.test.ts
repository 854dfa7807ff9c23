/**
 * How the gateway authenticates itself at the real IdP: `private_key_jwt`
 * (RFC 7523, the key a JWK or a PEM file, no secret) and pushed authorization
 * requests (RFC 9126); and what a key or secret the IdP refuses does to a
 * login: 401 `login_failed`, audited with the IdP's reason.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createPrivateKey } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, startLogin } from '../helpers/login-flow.js'
import { signIn } from '../helpers/sign-in.js'
import { startStack, type Stack } from '../helpers/stack.js'

type LogLine = Record<string, unknown>

function logCollector () {
  const lines: LogLine[] = []
  return {
    lines,
    stream: { write (chunk: string) { for (const text of chunk.split('\n')) if (text) lines.push(JSON.parse(text) as LogLine) } },
  }
}

const ALICE = { username: 'alice', password: 'alice-password' }

/** A login that gets as far as the callback; its answer. */
async function callbackAnswer (gatewayUrl: string) {
  const browser = new HttpBrowser()
  const start = await startLogin(browser, gatewayUrl)
  const idp = await authenticateAtIdp(browser, start.authorizationUrl, gatewayUrl, ALICE)
  return capture(browser, idp.callbackUrl)
}

async function es256Key () {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const kid = `gateway-${Math.random().toString(36).slice(2)}`
  return {
    privateJwk: { ...await exportJWK(privateKey), kid, alg: 'ES256' },
    publicJwk: { ...await exportJWK(publicKey), kid, alg: 'ES256' },
    privateKey,
  }
}

describe('private_key_jwt', () => {
  const logs = logCollector()
  let stack: Stack
  let key: Awaited<ReturnType<typeof es256Key>>
  beforeAll(async () => {
    key = await es256Key()
    stack = await startStack({
      store: 'memory',
      deps: { logStream: logs.stream },
      idpClient: { clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [key.publicJwk] }, clientCredentials: true },
      gatewayEnv: {
        LOG_LEVEL: 'info',
        OIDC_CLIENT_SECRET: '',
        OIDC_CLIENT_AUTH: 'private_key_jwt',
        OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(key.privateJwk),
      },
      policy: (upstream) => ({
        routes: [
          { prefix: '/api', upstream, allow: [{ methods: ['GET'], path: '/me', roles: ['user'] }] },
          { prefix: '/service', upstream, token: { type: 'client' }, allow: [{ methods: ['GET'], path: '/me' }] },
        ],
      }),
    })
  })
  afterAll(async () => { await stack?.close() })

  it('signs in and gets the gateway\'s own token with a signed assertion and no secret', async () => {
    const user = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/api/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
    expect(stack.api.received.at(-1)!.token).toMatchObject({ sub: 'alice' })
    expect((await fetch(`${stack.publicUrl}/service/me`)).status).toBe(200)
    expect(stack.api.received.at(-1)!.token).toMatchObject({ sub: 'bff-gateway', clientId: 'bff-gateway' })
  })

  it('reads the key from a PEM file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bff-key-'))
    const pemFile = join(dir, 'client-key.pem')
    await writeFile(pemFile, createPrivateKey({ key: key.privateJwk as unknown as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'pkcs8' }))
    await stack.gateway.close()
    await stack.restartGateway(0, { OIDC_CLIENT_PRIVATE_KEY: pemFile })
    const user = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/api/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
  })

  it('a key the IdP does not know fails the login: 401 login_failed, audited with the IdP\'s reason', async () => {
    const stranger = await es256Key()
    await stack.gateways[0]!.close()
    await stack.restartGateway(0, { OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(stranger.privateJwk) })
    const answer = await callbackAnswer(stack.publicUrl)
    expect(answer.status).toBe(401)
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'login_failed' })
    expect(answer.setCookies.some(cookie => cookie.startsWith('bff='))).toBe(false)
    expect(logs.lines).toContainEqual(expect.objectContaining({ audit: 'login_failed', reason: 'invalid_client' }))
    expect(JSON.stringify(logs.lines)).not.toContain(stranger.privateJwk.d)
  })
})

describe('pushed authorization requests', () => {
  const logs = logCollector()
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({
      store: 'memory',
      deps: { logStream: logs.stream },
      idpClient: { requirePar: true },
      gatewayEnv: { LOG_LEVEL: 'info', OIDC_PAR: 'true' },
    })
  })
  afterAll(async () => { await stack?.close() })

  it('signs in through a pushed request: the browser carries only its request_uri', async () => {
    const start = await startLogin(new HttpBrowser(), stack.publicUrl)
    const params = new URL(start.authorizationUrl).searchParams
    expect([...params.keys()].sort()).toEqual(['client_id', 'request_uri'])
    expect(params.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/)
    const user = await signIn(stack.publicUrl)
    expect((await fetch(`${stack.publicUrl}/api/me`, { headers: { cookie: user.cookie } })).status).toBe(200)
  })

  it('a secret the IdP refuses fails the login at once: 401 login_failed, audited', async () => {
    await stack.gateway.close()
    await stack.restartGateway(0, { OIDC_CLIENT_SECRET: 'not-the-secret-0123456789-abcdefghijklmnop' })
    const response = await fetch(`${stack.publicUrl}/bff/login`, { redirect: 'manual' })
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: 'login_failed' })
    expect(logs.lines).toContainEqual(expect.objectContaining({ audit: 'login_failed', reason: 'invalid_client' }))
  })
})
