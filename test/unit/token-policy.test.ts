/**
 * The route policy's `token` field: what it accepts, what it refuses (one line
 * naming the route), what a policy asks of logins, and the start-up refusal of
 * a policy that does not fit the configuration. Also the client key of
 * `private_key_jwt` and the variables that go with it.
 */
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { readClientPrivateKey } from '../../gateway/auth/client-key.js'
import { ConfigError, loadConfig } from '../../gateway/config.js'
import { parseRoutePolicy, RoutePolicyError } from '../../gateway/proxy/route-policy.js'
import { checkPolicyAgainstConfig, loginTokenNeeds, policyConfigProblems } from '../../gateway/proxy/token-policy.js'

type Json = Record<string, unknown>

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ORDERS = 'https://orders.example'
const BILLING = 'https://billing.example'

/** A valid environment but for what a test adds. */
const ENV = {
  PUBLIC_URL: 'https://app.example.com',
  ADMIN_TOKEN: 'x'.repeat(40),
  SESSION_SECRET: 's'.repeat(40),
  OIDC_ISSUER: 'https://idp.example.com',
  OIDC_CLIENT_ID: 'bff',
}

const route = (prefix: string, token: Json | undefined, allow: Json[] = [{ methods: ['GET'], path: '/x', roles: ['user'] }]): Json => ({
  prefix, upstream: 'http://127.0.0.1:4001', ...(token !== undefined ? { token } : {}), allow,
})
const open = [{ methods: ['GET'], path: '/x' }]

function problemsOf (routes: Json[]): readonly string[] {
  try {
    parseRoutePolicy({ routes }, 'routes.json')
  } catch (error) {
    if (error instanceof RoutePolicyError) return error.problems
    throw error
  }
  return []
}

describe('token policy: accepted', () => {
  it('compiles each type, with the session\'s own token as the default', () => {
    const policy = parseRoutePolicy({
      routes: [
        route('/a', undefined),
        route('/b', { type: 'user', audience: ORDERS, scopes: ['orders:read', 'orders:read'] }),
        route('/c', { type: 'user', audience: BILLING, exchange: 'token-exchange', dpop: true }),
        route('/d', { type: 'client', audience: 'https://catalog.example', scopes: ['catalog:read'] }, open),
        route('/e', { type: 'none' }, open),
        route('/f', { type: 'user-optional' }, open),
      ],
    }, 'routes.json')
    expect(policy.routes.map(r => r.token)).toEqual([
      { type: 'user', audience: undefined, scope: undefined, grant: 'refresh_token', dpop: false },
      { type: 'user', audience: ORDERS, scope: 'orders:read', grant: 'refresh_token', dpop: false },
      { type: 'user', audience: BILLING, scope: undefined, grant: 'token_exchange', dpop: true },
      { type: 'client', audience: 'https://catalog.example', scope: 'catalog:read', grant: 'refresh_token', dpop: false },
      { type: 'none', audience: undefined, scope: undefined, grant: 'refresh_token', dpop: false },
      { type: 'user-optional', audience: undefined, scope: undefined, grant: 'refresh_token', dpop: false },
    ])
    expect(policy.routes[4]!.rules[0]).toMatchObject({ open: true, roles: [] })
  })

  it('lets rules without roles stand on every type but user; a client route may name scopes alone', () => {
    expect(problemsOf([route('/a', { type: 'user-optional' }, open), route('/b', { type: 'client', scopes: ['s'] }, open), route('/c', { type: 'none' }, open)])).toEqual([])
  })

  it('asks a login for every user audience, and binds its own token only when a route without audience wants DPoP', () => {
    const policy = parseRoutePolicy({
      routes: [
        route('/a', { audience: ORDERS }),
        route('/b', { type: 'user-optional', audience: BILLING, dpop: true }, open),
        route('/c', { type: 'client', audience: 'https://catalog.example' }, open),
        route('/d', { audience: ORDERS }),
      ],
    }, 'routes.json')
    expect(loginTokenNeeds(policy.routes)).toEqual({ audiences: [ORDERS, BILLING], sessionTokenDpop: false, anyUserDpop: true })
    const own = parseRoutePolicy({ routes: [route('/a', { dpop: true })] }, 'routes.json')
    expect(loginTokenNeeds(own.routes)).toEqual({ audiences: [], sessionTokenDpop: true, anyUserDpop: true })
  })
})

describe('token policy: refused, one line naming the route', () => {
  const cases: Array<[name: string, routes: Json[], problems: string[]]> = [
    ['an unknown token type', [route('/a', { type: 'bearer' })],
      ['routes[0].token.type: unknown token type "bearer" (allowed: user, user-optional, client, none)']],
    ['an unknown key', [route('/a', { type: 'user', audiences: [ORDERS] })], ['routes[0].token.audiences: unknown key']],
    ['scopes without an audience on a user route', [route('/a', { scopes: ['orders:read'] })],
      ['routes[0].token.scopes: needs an audience (scopes narrow the token for one API)']],
    ['exchange without an audience', [route('/a', { exchange: 'token-exchange' })],
      ['routes[0].token.exchange: needs an audience (the API to exchange the token for)']],
    ['an unknown exchange', [route('/a', { audience: ORDERS, exchange: 'jwt-bearer' })],
      ['routes[0].token.exchange: unknown exchange "jwt-bearer" (the only one is "token-exchange"; leave it out to use the refresh token)']],
    ['exchange on a client route', [route('/a', { type: 'client', audience: ORDERS, exchange: 'token-exchange' }, open)],
      ['routes[0].token.exchange: only a user\'s token is exchanged; a "client" route gets the gateway\'s own token']],
    ['dpop on a none route', [route('/a', { type: 'none', dpop: true }, open)], ['routes[0].token.dpop: a "none" route sends no token to bind']],
    ['audience and scopes on a none route', [route('/a', { type: 'none', audience: ORDERS, scopes: ['x'] }, open)], [
      'routes[0].token.audience: a "none" route sends no token',
      'routes[0].token.scopes: a "none" route sends no token',
    ]],
    ['an audience that is no absolute URI', [route('/a', { audience: 'orders' })], ['routes[0].token.audience: must be an absolute URI, e.g. https://orders.example']],
    ['an audience with a fragment', [route('/a', { audience: 'https://orders.example/#x' })], ['routes[0].token.audience: must not have a fragment']],
    ['a scope with a space', [route('/a', { audience: ORDERS, scopes: ['orders read'] })],
      ['routes[0].token.scopes[0]: must be one scope: printable characters, no spaces, quotes or backslashes']],
    ['a rule without roles on a user route', [route('/a', { type: 'user' }, open)], ['routes[0].allow[0].roles: is required']],
    ['dpop on a WebSocket route', [{ ...route('/a', { dpop: true }), websocket: true }], ['routes[0].token.dpop: not supported on a route with "websocket": true']],
    ['two routes asking for one audience\'s token differently', [
      route('/a', { audience: ORDERS, scopes: ['orders:read'] }),
      route('/b', { audience: ORDERS, scopes: ['orders:write'], dpop: true }),
    ], ['routes[1].token: the token for "https://orders.example" is also routes[0]\'s, which asks for it with other scopes, dpop; routes sharing a token must ask for it the same way']],
    ['routes without an audience disagreeing on DPoP', [route('/a', undefined), route('/b', { type: 'user-optional', dpop: true }, open)],
      ['routes[1].token: the session\'s own token (no audience) is also routes[0]\'s, which asks for it with other dpop; routes sharing a token must ask for it the same way']],
  ]

  it.each(cases)('%s', (_name, routes, problems) => {
    expect(problemsOf(routes)).toEqual(problems)
  })
})

describe('token policy against the configuration', () => {
  const policy = parseRoutePolicy({
    routes: [
      route('/a', { audience: ORDERS, scopes: ['orders:read', 'orders:write'] }),
      route('/b', { type: 'client', audience: BILLING, scopes: ['billing:admin'] }, open),
    ],
  }, 'routes.json')

  it('refuses user scopes the login never asks for, naming the route; a client\'s scopes are its own', () => {
    expect(policyConfigProblems(policy.routes, 'openid orders:read')).toEqual([
      'routes[0].token.scopes: "orders:write" not in OIDC_SCOPES; the login never asks the user for it',
    ])
    expect(policyConfigProblems(policy.routes, 'openid orders:read orders:write')).toEqual([])
    expect(() => checkPolicyAgainstConfig(policy, { oidc: { scopes: 'openid' } })).toThrow(ConfigError)
  })

  it('stops the process before it listens, with a line per problem naming the route', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bff-token-policy-'))
    const routesFile = join(dir, 'routes.json')
    const scopesFile = join(dir, 'scopes.json')
    await writeFile(routesFile, JSON.stringify({
      routes: [
        route('/a', { type: 'bearer' }),
        route('/b', { scopes: ['orders:read'] }),
        route('/c', { type: 'none', dpop: true }, open),
      ],
    }))
    await writeFile(scopesFile, JSON.stringify({ routes: [route('/a', { audience: ORDERS, scopes: ['orders:write'] })] }))
    const env = { PATH: process.env.PATH, ...ENV, OIDC_CLIENT_SECRET: 'client-secret' }
    const start = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], {
      cwd: ROOT, env: { ...env, ROUTES_FILE: file }, encoding: 'utf8', timeout: 30_000,
    })
    const invalid = start(routesFile)
    expect(invalid.status).not.toBe(0)
    expect(invalid.stdout).not.toContain('listener')
    expect(invalid.stderr).toContain('config error: ROUTES_FILE: routes[0].token.type: unknown token type "bearer"')
    expect(invalid.stderr).toContain('config error: ROUTES_FILE: routes[1].token.scopes: needs an audience')
    expect(invalid.stderr).toContain('config error: ROUTES_FILE: routes[2].token.dpop: a "none" route sends no token to bind')

    const ungranted = start(scopesFile)
    expect(ungranted.status).not.toBe(0)
    expect(ungranted.stderr).toContain('config error: ROUTES_FILE: routes[0].token.scopes: "orders:write" not in OIDC_SCOPES')
  })
})

describe('the client key (OIDC_CLIENT_PRIVATE_KEY)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = privateKey.export({ format: 'jwk' })

  it('reads a JWK, or a JWK or PEM file, and picks the algorithm of the key', async () => {
    expect(readClientPrivateKey(JSON.stringify({ ...jwk, kid: 'k1' }))).toMatchObject({ alg: 'ES256', kid: 'k1', jwk: { d: jwk.d } })
    const dir = await mkdtemp(join(tmpdir(), 'bff-client-key-'))
    await writeFile(join(dir, 'key.json'), JSON.stringify(jwk))
    await writeFile(join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }))
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    await writeFile(join(dir, 'rsa.pem'), rsa.export({ format: 'pem', type: 'pkcs1' }))
    expect(readClientPrivateKey(join(dir, 'key.json')).alg).toBe('ES256')
    expect(readClientPrivateKey(join(dir, 'key.pem'))).toMatchObject({ alg: 'ES256', jwk: { d: jwk.d } })
    expect(readClientPrivateKey(join(dir, 'rsa.pem')).alg).toBe('RS256')
  })

  it.each([
    ['a missing file', '/nonexistent/key.pem', 'cannot read the key file /nonexistent/key.pem: ENOENT'],
    ['JSON that does not parse', '{"kty":"EC","d":"secret-material', 'the JWK is not valid JSON'],
    ['a public key', JSON.stringify(publicKey.export({ format: 'jwk' })), 'the JWK is a public key; the gateway needs the private key (with "d")'],
    ['a broken key', JSON.stringify({ ...jwk, x: 'AAAA' }), 'the JWK is not a valid private JWK'],
    ['an algorithm the key cannot sign with', JSON.stringify({ ...jwk, alg: 'RS256' }), 'the JWK says "alg": "RS256", which a EC P-256 key cannot sign with'],
  ])('refuses %s, without quoting the key', (_name, value, message) => {
    expect(() => readClientPrivateKey(value)).toThrow(message)
    try {
      readClientPrivateKey(value)
    } catch (error) {
      expect((error as Error).message).not.toContain(jwk.d)
      expect((error as Error).message).not.toContain('secret-material')
    }
  })

  const base = { ...ENV, ROUTES_FILE: '/dev/null' }
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env)
    } catch (error) {
      if (error instanceof ConfigError) return error.problems
      throw error
    }
    return []
  }

  it('needs no secret with private_key_jwt, but the key; a wrong key stops the start naming the variable', () => {
    const config = loadConfig({ ...base, OIDC_CLIENT_AUTH: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(jwk), OIDC_PAR: 'true' })
    expect(config.oidc.clientAuth).toMatchObject({ method: 'private_key_jwt', key: { alg: 'ES256' } })
    expect(config.oidc.par).toBe(true)
    expect(problems({ ...base, OIDC_CLIENT_AUTH: 'private_key_jwt' })).toEqual(['OIDC_CLIENT_PRIVATE_KEY: is required with OIDC_CLIENT_AUTH=private_key_jwt'])
    expect(problems({ ...base, OIDC_CLIENT_AUTH: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: '/nonexistent/key.pem' }))
      .toEqual(['OIDC_CLIENT_PRIVATE_KEY: cannot read the key file /nonexistent/key.pem: ENOENT'])
    expect(problems({ ...base, OIDC_CLIENT_AUTH: 'client_secret_post' })).toEqual(['OIDC_CLIENT_SECRET: is required'])
    expect(loadConfig({ ...base, OIDC_CLIENT_SECRET: 'secret', OIDC_CLIENT_AUTH: 'client_secret_post' }).oidc.clientAuth)
      .toEqual({ method: 'client_secret_post', secret: 'secret' })
    expect(problems({ ...base, OIDC_CLIENT_SECRET: 'secret', OIDC_CLIENT_AUTH: 'tls_client_auth' })[0]).toMatch(/^OIDC_CLIENT_AUTH: /)
  })
})
