import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { normaliseRequestPath } from '../../gateway/proxy/normalise-path.js'
import {
  isAllowedForRoles,
  loadRoutePolicyFile,
  matchRoute,
  parseRoutePolicy,
  RoutePolicyError,
  type CompiledRule,
} from '../../gateway/proxy/route-policy.js'

type Json = Record<string, unknown>

const apiRoute = (override: Json = {}): Json => ({
  prefix: '/api',
  upstream: 'http://127.0.0.1:4001',
  rewritePrefix: '',
  allow: [
    { methods: ['GET'], path: '/orders', roles: ['user'] },
    { methods: ['GET'], path: '/orders/:id', roles: ['user'] },
  ],
  ...override,
})

const rule = (override: Json = {}): Json => ({ methods: ['GET'], path: '/orders', roles: ['user'], ...override })

function problemsOf (json: unknown): readonly string[] {
  try {
    parseRoutePolicy(json, 'routes.json')
  } catch (err) {
    if (err instanceof RoutePolicyError) return err.problems
    throw err
  }
  throw new Error('the policy was accepted')
}

describe('parseRoutePolicy: each problem is one line naming its place', () => {
  const cases: Array<[name: string, json: unknown, problems: string[]]> = [
    ['not an object', null, ['top level: must be an object']],
    ['no routes', {}, ['routes: is required']],
    ['empty routes', { routes: [] }, ['routes: must list at least one route']],
    ['unknown top-level key', { routes: [apiRoute()], route: [] }, ['route: unknown key']],
    ['misspelt key', { routes: [apiRoute({ alow: [] })] }, ['routes[0].alow: unknown key']],
    ['missing upstream', { routes: [apiRoute({ upstream: undefined })] }, ['routes[0].upstream: is required']],
    ['upstream not a string', { routes: [apiRoute({ upstream: 4001 })] }, ['routes[0].upstream: must be a string']],

    ['prefix without "/"', { routes: [apiRoute({ prefix: 'api' })] }, ['routes[0].prefix: must start with "/"']],
    ['prefix ending in "/"', { routes: [apiRoute({ prefix: '/api/' })] }, ['routes[0].prefix: must not end with "/"']],
    ['root prefix', { routes: [apiRoute({ prefix: '/' })] }, ['routes[0].prefix: must not end with "/"']],
    ['prefix with "//"', { routes: [apiRoute({ prefix: '/api//v2' })] }, ['routes[0].prefix: must not contain "//"']],
    ['prefix with a parameter', { routes: [apiRoute({ prefix: '/api/:v' })] }, ['routes[0].prefix: must be literal: no ":" parameters or "*" wildcards']],
    ['prefix with a wildcard', { routes: [apiRoute({ prefix: '/api/*' })] }, ['routes[0].prefix: must be literal: no ":" parameters or "*" wildcards']],
    ['prefix with ".."', { routes: [apiRoute({ prefix: '/api/..' })] }, ['routes[0].prefix: must not contain "." or ".." segments']],
    ['prefix with a space', { routes: [apiRoute({ prefix: '/my api' })] }, ['routes[0].prefix: may only contain letters, digits, "-", ".", "_", "~" and "/"']],
    ['prefix on the gateway\'s own endpoints', { routes: [apiRoute({ prefix: '/bff/api' })] }, ['routes[0].prefix: "/bff" is reserved for the gateway\'s own endpoints']],

    ['upstream without a scheme', { routes: [apiRoute({ upstream: '127.0.0.1:4001' })] }, ['routes[0].upstream: must be an absolute http or https URL']],
    ['upstream relative', { routes: [apiRoute({ upstream: '/x' })] }, ['routes[0].upstream: must be an absolute http or https URL']],
    ['upstream ftp', { routes: [apiRoute({ upstream: 'ftp://files' })] }, ['routes[0].upstream: must be an http or https URL']],
    ['upstream with credentials', { routes: [apiRoute({ upstream: 'http://u:p@api' })] }, ['routes[0].upstream: must not contain credentials']],
    ['upstream with a query', { routes: [apiRoute({ upstream: 'http://api/?x=1' })] }, ['routes[0].upstream: must not have a query']],
    ['upstream with a fragment', { routes: [apiRoute({ upstream: 'http://api/#x' })] }, ['routes[0].upstream: must not have a fragment']],
    ['upstream with a path', { routes: [apiRoute({ upstream: 'http://api/v1' })] }, ['routes[0].upstream: must not have a path; use rewritePrefix']],

    ['rewritePrefix without "/"', { routes: [apiRoute({ rewritePrefix: 'v1' })] }, ['routes[0].rewritePrefix: must start with "/"']],
    ['rewritePrefix ending in "/"', { routes: [apiRoute({ rewritePrefix: '/v1/' })] }, ['routes[0].rewritePrefix: must not end with "/"']],
    ['timeoutMs zero', { routes: [apiRoute({ timeoutMs: 0 })] }, ['routes[0].timeoutMs: must be a whole number of milliseconds between 1 and 2147483647']],
    ['timeoutMs fractional', { routes: [apiRoute({ timeoutMs: 1.5 })] }, ['routes[0].timeoutMs: must be a whole number of milliseconds between 1 and 2147483647']],
    ['timeoutMs too large for a timer', { routes: [apiRoute({ timeoutMs: 2 ** 31 })] }, ['routes[0].timeoutMs: must be a whole number of milliseconds between 1 and 2147483647']],
    ['timeoutMs as text', { routes: [apiRoute({ timeoutMs: '100' })] }, ['routes[0].timeoutMs: must be a number']],
    ['websocket as text', { routes: [apiRoute({ websocket: 'yes' })] }, ['routes[0].websocket: must be true or false']],
    ['allowMethodParam as text', { routes: [apiRoute({ allowMethodParam: 'true' })] }, ['routes[0].allowMethodParam: must be true or false']],
    ['no rules', { routes: [apiRoute({ allow: [] })] }, ['routes[0].allow: must list at least one rule']],

    ['unknown method', { routes: [apiRoute({ allow: [rule({ methods: ['GET', 'FETCH'] })] })] },
      ['routes[0].allow[0].methods[1]: unknown method "FETCH" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)']],
    ['lower-case method', { routes: [apiRoute({ allow: [rule({ methods: ['get'] })] })] },
      ['routes[0].allow[0].methods[0]: unknown method "get" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)']],
    ['no methods', { routes: [apiRoute({ allow: [rule({ methods: [] })] })] }, ['routes[0].allow[0].methods: must list at least one method']],

    ['path without "/"', { routes: [apiRoute({ allow: [rule({ path: 'orders' })] })] }, ['routes[0].allow[0].path: must start with "/"']],
    ['path with "//"', { routes: [apiRoute({ allow: [rule({ path: '/orders//x' })] })] }, ['routes[0].allow[0].path: must not contain "//"']],
    ['path with ".."', { routes: [apiRoute({ allow: [rule({ path: '/orders/../admin' })] })] }, ['routes[0].allow[0].path: must not contain "." or ".." segments']],
    ['path with a wildcard', { routes: [apiRoute({ allow: [rule({ path: '/orders/*' })] })] }, ['routes[0].allow[0].path: wildcards ("*") are not supported; list each path']],
    ['parameter inside a segment', { routes: [apiRoute({ allow: [rule({ path: '/orders/x:id' })] })] }, ['routes[0].allow[0].path: a parameter must be a whole segment ("x:id")']],
    ['bad parameter name', { routes: [apiRoute({ allow: [rule({ path: '/orders/:1d' })] })] },
      ['routes[0].allow[0].path: invalid parameter ":1d": a name is a letter or "_" followed by letters, digits or "_"']],
    ['empty parameter name', { routes: [apiRoute({ allow: [rule({ path: '/orders/:' })] })] },
      ['routes[0].allow[0].path: invalid parameter ":": a name is a letter or "_" followed by letters, digits or "_"']],
    ['repeated parameter', { routes: [apiRoute({ allow: [rule({ path: '/a/:id/b/:id' })] })] }, ['routes[0].allow[0].path: parameter ":id" appears twice']],
    ['encoded text in a path', { routes: [apiRoute({ allow: [rule({ path: '/orders/a%20b' })] })] },
      ['routes[0].allow[0].path: must not contain "%", "?", "#", "\\", ";", spaces or control characters (write segments decoded)']],

    ['no roles', { routes: [apiRoute({ allow: [rule({ roles: [] })] })] },
      ['routes[0].allow[0].roles: must list at least one role; use ["*"] for any signed-in user']],
    ['empty role', { routes: [apiRoute({ allow: [rule({ roles: [''] })] })] }, ['routes[0].allow[0].roles[0]: must not be empty']],
    ['"*" with other roles', { routes: [apiRoute({ allow: [rule({ roles: ['*', 'admin'] })] })] },
      ['routes[0].allow[0].roles: "*" (any signed-in user) must be the only role']],
    ['missing roles', { routes: [apiRoute({ allow: [{ methods: ['GET'], path: '/orders' }] })] }, ['routes[0].allow[0].roles: is required']],

    ['acr not a list', { routes: [apiRoute({ allow: [rule({ acr: 'urn:mfa' })] })] }, ['routes[0].allow[0].acr: must be an array']],
    ['empty acr list', { routes: [apiRoute({ allow: [rule({ acr: [] })] })] },
      ['routes[0].allow[0].acr: must list at least one acr value (any one of them suffices)']],
    ['acr value with a space', { routes: [apiRoute({ allow: [rule(), rule({ path: '/orders/:id', acr: ['urn:mfa', 'two words'] })] })] },
      ['routes[0].allow[1].acr[1]: must be an acr value: 1 to 256 printable ASCII characters, no space, " or \\']],
    ['maxAge not a number', { routes: [apiRoute({ allow: [rule({ maxAge: '300' })] })] }, ['routes[0].allow[0].maxAge: must be a number']],
    ['maxAge of 0', { routes: [apiRoute({ allow: [rule({ maxAge: 0 })] })] }, ['routes[0].allow[0].maxAge: must be at least 1 second']],
    ['fractional maxAge', { routes: [apiRoute({ allow: [rule({ maxAge: 1.5 })] })] }, ['routes[0].allow[0].maxAge: must be a whole number of seconds']],

    ['nested prefixes', { routes: [apiRoute(), apiRoute({ prefix: '/api/v2' })] },
      ['routes[1].prefix: "/api/v2" overlaps routes[0].prefix "/api"; prefixes must not nest']],
    ['nested prefixes, longer first', { routes: [apiRoute({ prefix: '/api/v2' }), apiRoute()] },
      ['routes[1].prefix: "/api" overlaps routes[0].prefix "/api/v2"; prefixes must not nest']],
    ['repeated prefix', { routes: [apiRoute(), apiRoute()] }, ['routes[1].prefix: "/api" is also routes[0].prefix']],
    ['same method and template shape twice', { routes: [apiRoute({ allow: [rule({ path: '/orders/:id' }), rule({ path: '/orders/:orderId', roles: ['admin'] })] })] },
      ['routes[0].allow[1]: GET /orders/:orderId is already allowed by allow[0]']],
    ['HEAD next to GET', { routes: [apiRoute({ allow: [rule(), rule({ methods: ['HEAD'] })] })] },
      ['routes[0].allow[1]: HEAD /orders is already allowed by allow[0] (GET implies HEAD)']],

    ['several problems at once', { routes: [apiRoute({ prefix: 'api', upstream: 'ftp://x', allow: [rule({ methods: ['FETCH'], roles: [] })] })] }, [
      'routes[0].prefix: must start with "/"',
      'routes[0].upstream: must be an http or https URL',
      'routes[0].allow[0].methods[0]: unknown method "FETCH" (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)',
      'routes[0].allow[0].roles: must list at least one role; use ["*"] for any signed-in user',
    ]],
  ]

  it.each(cases)('%s', (_name, json, problems) => {
    expect(problemsOf(json)).toEqual(problems)
  })

  it('names the source on every line of the message', () => {
    const error = (() => {
      try {
        parseRoutePolicy({ routes: [apiRoute({ prefix: 'api', upstream: 'ftp://x' })] }, '/etc/bff/routes.json')
      } catch (err) {
        return err as Error
      }
    })()
    expect(error?.message).toBe([
      '/etc/bff/routes.json: routes[0].prefix: must start with "/"',
      '/etc/bff/routes.json: routes[0].upstream: must be an http or https URL',
    ].join('\n'))
  })

  it('accepts prefixes that only share leading characters', () => {
    expect(() => parseRoutePolicy({ routes: [apiRoute(), apiRoute({ prefix: '/apix' })] }, 'routes.json')).not.toThrow()
  })

  it('accepts the same template for different methods, and a static template beside a parameter', () => {
    const allow = [rule(), rule({ methods: ['POST'] }), rule({ path: '/orders/:id' }), rule({ path: '/orders/summary' })]
    expect(() => parseRoutePolicy({ routes: [apiRoute({ allow })] }, 'routes.json')).not.toThrow()
  })
})

describe('parseRoutePolicy: the compiled routes', () => {
  it('keeps the upstream origin without a trailing slash and fills in defaults', () => {
    const { routes } = parseRoutePolicy({
      routes: [
        { prefix: '/api', upstream: 'http://127.0.0.1:4001/', allow: [rule()] },
        { prefix: '/billing', upstream: 'https://billing.internal:443', rewritePrefix: '/v2', timeoutMs: 5000, websocket: true, allowMethodParam: true, allow: [rule()] },
      ],
    }, 'routes.json')
    expect(routes.map(({ prefix, upstream, rewritePrefix, timeoutMs, websocket, allowMethodParam }) =>
      ({ prefix, upstream, rewritePrefix, timeoutMs, websocket, allowMethodParam }))).toEqual([
      { prefix: '/api', upstream: 'http://127.0.0.1:4001', rewritePrefix: '', timeoutMs: undefined, websocket: false, allowMethodParam: false },
      { prefix: '/billing', upstream: 'https://billing.internal', rewritePrefix: '/v2', timeoutMs: 5000, websocket: true, allowMethodParam: true },
    ])
  })
})

describe('parseRoutePolicy: step-up rules', () => {
  it('compiles acr and maxAge into the rule\'s step-up, and leaves rules without them alone', () => {
    const { routes } = parseRoutePolicy({
      routes: [apiRoute({
        allow: [
          rule(),
          rule({ path: '/orders/:id', acr: ['urn:mfa', 'phr'] }),
          rule({ methods: ['POST'], maxAge: 300 }),
          rule({ methods: ['DELETE'], path: '/orders/:id', acr: ['urn:mfa'], maxAge: 60 }),
        ],
      })],
    }, 'routes.json')
    expect(routes[0]!.rules.map(r => r.stepUp)).toEqual([
      undefined,
      { acrValues: ['urn:mfa', 'phr'] },
      { maxAge: 300 },
      { acrValues: ['urn:mfa'], maxAge: 60 },
    ])
  })
})

describe('loadRoutePolicyFile', () => {
  async function fileWith (text: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'bff-routes-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const path = join(dir, 'routes.json')
    await writeFile(path, text)
    return path
  }

  it('reads and compiles a policy file', async () => {
    const path = await fileWith(JSON.stringify({ routes: [apiRoute()] }))
    const policy = await loadRoutePolicyFile(path)
    expect(policy.routes.map((route) => route.prefix)).toEqual(['/api'])
  })

  it('keeps the SHA-256 of the file\'s bytes and its routes as written, defaults not filled in', async () => {
    const text = `{ "routes": [{ "prefix": "/api", "upstream": "http://127.0.0.1:4001",\n  "allow": [${JSON.stringify(rule())}] }] }\n`
    const policy = await loadRoutePolicyFile(await fileWith(text))
    expect(policy.sha256).toBe(createHash('sha256').update(text).digest('hex'))
    expect(policy.writtenRoutes).toEqual(JSON.parse(text).routes)
  })

  it('names the file and the parse error for bad JSON', async () => {
    const path = await fileWith('{ "routes": [ }')
    const error = await loadRoutePolicyFile(path).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(RoutePolicyError)
    expect((error as RoutePolicyError).message).toMatch(new RegExp(`^${path}: is not valid JSON: .+`))
  })

  it('names the file when it cannot be read', async () => {
    const path = join(tmpdir(), 'bff-no-such-dir', 'routes.json')
    const error = await loadRoutePolicyFile(path).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(RoutePolicyError)
    expect((error as RoutePolicyError).message).toMatch(new RegExp(`^${path}: cannot be read: .*ENOENT`))
  })

  it('names the file and the place of a policy problem', async () => {
    const path = await fileWith(JSON.stringify({ routes: [apiRoute({ prefix: '/api/' })] }))
    await expect(loadRoutePolicyFile(path)).rejects.toThrow(`${path}: routes[0].prefix: must not end with "/"`)
  })
})

describe('matchRoute', () => {
  const policy = parseRoutePolicy({
    routes: [
      {
        prefix: '/api',
        upstream: 'http://127.0.0.1:4001',
        allow: [
          { methods: ['GET'], path: '/', roles: ['*'] },
          { methods: ['GET', 'POST'], path: '/orders', roles: ['user'] },
          { methods: ['GET'], path: '/orders/:id', roles: ['user'] },
          { methods: ['GET'], path: '/orders/summary', roles: ['admin'] },
          { methods: ['PUT'], path: '/orders/:id/items/:item', roles: ['user', 'editor'] },
          { methods: ['DELETE'], path: '/admin/users/:id', roles: ['admin'] },
          { methods: ['OPTIONS'], path: '/orders/', roles: ['*'] },
        ],
      },
      {
        prefix: '/v2/billing',
        upstream: 'https://billing.internal:8443',
        rewritePrefix: '/billing/v2',
        allow: [{ methods: ['GET'], path: '/invoices/:id', roles: ['*'] }],
      },
    ],
  }, 'routes.json')

  function match (method: string, raw: string) {
    const path = normaliseRequestPath(raw)
    if (!path.ok) throw new Error(path.reason)
    return matchRoute(policy, method, path)
  }

  const allowed: Array<[method: string, raw: string, rule: string, upstreamPath: string, params: Record<string, string>]> = [
    ['GET', '/api/orders', '/orders', '/orders', {}],
    ['HEAD', '/api/orders', '/orders', '/orders', {}],
    ['POST', '/api/orders', '/orders', '/orders', {}],
    ['GET', '/api/orders/42', '/orders/:id', '/orders/42', { id: '42' }],
    ['HEAD', '/api/orders/42', '/orders/:id', '/orders/42', { id: '42' }],
    ['GET', '/api/orders/caf%C3%A9', '/orders/:id', '/orders/caf%C3%A9', { id: 'café' }],
    ['GET', '/api/orders/%61bc', '/orders/:id', '/orders/abc', { id: 'abc' }],
    ['GET', '/api/orders/a:b', '/orders/:id', '/orders/a%3Ab', { id: 'a:b' }],
    ['GET', '/api/orders/summary', '/orders/summary', '/orders/summary', {}],
    ['PUT', '/api/orders/7/items/x1', '/orders/:id/items/:item', '/orders/7/items/x1', { id: '7', item: 'x1' }],
    ['DELETE', '/api/admin/users/u-1', '/admin/users/:id', '/admin/users/u-1', { id: 'u-1' }],
    ['OPTIONS', '/api/orders/', '/orders/', '/orders/', {}],
    ['GET', '/api', '/', '/', {}],
    ['GET', '/api/', '/', '/', {}],
    ['GET', '/v2/billing/invoices/9', '/invoices/:id', '/billing/v2/invoices/9', { id: '9' }],
  ]

  it.each(allowed)('%s %s → rule %s, upstream path %s', (method, raw, rulePath, upstreamPath, params) => {
    const result = match(method, raw)
    expect(result.kind).toBe('allowed')
    if (result.kind !== 'allowed') return
    expect(result.rule.path).toBe(rulePath)
    expect(result.upstreamPath).toBe(upstreamPath)
    expect({ ...result.params }).toEqual(params)
  })

  const notAllowed: Array<[method: string, raw: string, kind: 'no_rule' | 'unknown_prefix']> = [
    ['PUT', '/api/orders', 'no_rule'],
    ['DELETE', '/api/orders/1', 'no_rule'],
    ['OPTIONS', '/api/orders', 'no_rule'],
    ['get', '/api/orders', 'no_rule'],
    ['PROPFIND', '/api/orders', 'no_rule'],
    ['GET', '/api/orders/1/extra', 'no_rule'],
    ['GET', '/api/orders/', 'no_rule'],
    ['GET', '/api/Orders', 'no_rule'],
    ['HEAD', '/api/admin/users/1', 'no_rule'],
    ['PUT', '/api/orders/7/items/', 'no_rule'],
    ['GET', '/v2/billing', 'no_rule'],
    ['GET', '/v2/billing/invoices', 'no_rule'],
    ['GET', '/apix/orders', 'unknown_prefix'],
    ['GET', '/API/orders', 'unknown_prefix'],
    ['GET', '/v2', 'unknown_prefix'],
    ['GET', '/other', 'unknown_prefix'],
    ['GET', '/', 'unknown_prefix'],
  ]

  it.each(notAllowed)('%s %s → %s', (method, raw, kind) => {
    expect(match(method, raw).kind).toBe(kind)
  })

  it('names the route when no rule fits, so the caller can answer 403', () => {
    const result = match('PUT', '/api/orders')
    expect(result.kind === 'no_rule' && result.route.prefix).toBe('/api')
  })

  it('returns parameters on an object without a prototype', () => {
    const result = match('GET', '/api/orders/__proto__')
    expect(result.kind).toBe('allowed')
    if (result.kind === 'allowed') {
      expect(Object.getPrototypeOf(result.params)).toBeNull()
      expect(result.params.id).toBe('__proto__')
    }
  })
})

describe('isAllowedForRoles', () => {
  const { routes } = parseRoutePolicy({
    routes: [apiRoute({
      allow: [
        rule({ path: '/user', roles: ['user'] }),
        rule({ path: '/editors', roles: ['user', 'editor'] }),
        rule({ path: '/anyone', roles: ['*'] }),
      ],
    })],
  }, 'routes.json')
  const ruleFor = (path: string): CompiledRule => {
    const found = routes[0]?.rules.find((candidate) => candidate.path === path)
    if (found === undefined) throw new Error(`no rule ${path}`)
    return found
  }

  const cases: Array<[rule: string, roles: string[], allowed: boolean]> = [
    ['/user', ['user'], true],
    ['/user', ['admin', 'user'], true],
    ['/user', ['admin'], false],
    ['/user', [], false],
    ['/user', ['User'], false],
    // A role literally named "*" is not a wildcard on the user's side.
    ['/user', ['*'], false],
    ['/editors', ['editor'], true],
    ['/editors', ['user'], true],
    ['/editors', ['viewer'], false],
    ['/anyone', [], true],
    ['/anyone', ['whatever'], true],
  ]

  it.each(cases)('rule %s, user roles %j → %s', (path, roles, allowed) => {
    expect(isAllowedForRoles(ruleFor(path), roles)).toBe(allowed)
  })
})
