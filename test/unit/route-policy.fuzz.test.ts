/**
 * Property-based: parseRoutePolicy refuses bad policies only with a
 * RoutePolicyError, and matchRoute never lets a request through a rule it does
 * not fit: the matched rule's method and static segments are the request's,
 * and the upstream gets the rewrite prefix plus exactly the canonical path.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { normaliseRequestPath } from '../../gateway/proxy/normalise-path.js'
import { matchRoute, parseRoutePolicy, RoutePolicyError, type RouteMatch, type RoutePolicy } from '../../gateway/proxy/route-policy.js'
import { anyMethod, hostilePath, hostileSegment } from './fuzz-arbitraries.js'

const RUNS = 3000

// ---- random policies -------------------------------------------------------

// Each field is mostly well-formed and sometimes hostile, so that some policies compile and the
// rest are refused for one or two problems at a time.
const mostly = <T, U> (valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) => fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: hostile })

const validPiece = fc.constantFrom('orders', 'users', 'admin', 'a', 'x-1', 'é', 'a b', ':id', ':item', ':__proto__')
const hostilePiece = fc.constantFrom('', '.', '..', ':', ':1x', '*', 'a*', '%2F', 'a%20b', '\\', 'a;b', '?', '#', 'a:b', '\u0000', ':id')
const validTemplate = fc.array(validPiece, { maxLength: 4 }).map(parts => '/' + [...new Set(parts)].join('/'))
const hostileTemplate = fc.oneof(fc.array(fc.oneof(validPiece, hostilePiece), { maxLength: 4 }).map(parts => '/' + parts.join('/')), fc.string({ maxLength: 10 }))
const plainPrefix = fc.array(fc.constantFrom('api', 'v2', 'billing', 'x', 'a.b', 'a~b', 'other'), { minLength: 1, maxLength: 2 }).map(parts => '/' + parts.join('/'))
const validMethods = fc.uniqueArray(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), { minLength: 1, maxLength: 3 })
const hostileMethods = fc.oneof(fc.array(fc.constantFrom('GET', 'get', 'TRACE', '', 'CONNECT'), { maxLength: 3 }), fc.constant('GET'))

const ruleInput = fc.record({
  methods: mostly(validMethods, hostileMethods),
  path: mostly(validTemplate, hostileTemplate),
  roles: mostly(fc.constantFrom(['user'], ['*'], ['admin', 'user']), fc.constantFrom([], [''], ['*', 'user'], 'user')),
  extra: mostly(fc.constant(undefined), fc.anything()),
}).map(({ extra, ...rule }) => extra === undefined ? rule : { ...rule, extra })

const routeInput = fc.record({
  prefix: mostly(plainPrefix, fc.oneof(fc.constantFrom('/bff', '/bff/x', '/healthz', '/', '', 'api', '/api/', '/a//b', '/:id', '/a/..', '/%61'), hostileTemplate)),
  upstream: mostly(fc.constantFrom('http://127.0.0.1:4001', 'https://api.internal:8443', 'http://[::1]:9000'),
    fc.constantFrom('ftp://x', 'http://u:p@h', 'http://h/path', 'not a url', 'http://h?q', 'http://h#f', '')),
  rewritePrefix: mostly(fc.oneof(fc.constantFrom('', '/v1', '/base/path'), plainPrefix), fc.constantFrom('v1', '/v1/', '/../x', '/a b', '/a//b')),
  timeoutMs: mostly(fc.option(fc.integer({ min: 1, max: 60_000 }), { nil: undefined }), fc.oneof(fc.integer(), fc.double(), fc.constant('1000'))),
  websocket: mostly(fc.option(fc.boolean(), { nil: undefined }), fc.constant('yes')),
  allow: mostly(fc.array(ruleInput, { minLength: 1, maxLength: 4 }), fc.constantFrom([], {}, null)),
  unknown: mostly(fc.constant(undefined), fc.anything()),
}).map(route => Object.fromEntries(Object.entries(route).filter(([, value]) => value !== undefined)))

const policyInput = fc.oneof(
  { weight: 8, arbitrary: fc.record({ routes: fc.array(routeInput, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.anything() },
  { weight: 1, arbitrary: fc.jsonValue() }
)

/** Parses, or returns undefined after checking the refusal is the documented error with one line per problem. */
function parseOrRefuse (input: unknown): RoutePolicy | undefined {
  try {
    return parseRoutePolicy(input, 'fuzz.json')
  } catch (error) {
    expect(error).toBeInstanceOf(RoutePolicyError)
    const { problems } = error as RoutePolicyError
    expect(problems.length).toBeGreaterThan(0)
    for (const problem of problems) expect(problem).not.toContain('\n')
    return undefined
  }
}

// ---- what a match must satisfy --------------------------------------------

/** Every way a match could let a request through that it should not; empty when the match is sound. */
function unsoundness (policy: RoutePolicy, method: string, raw: string, match: RouteMatch): string[] {
  const path = normaliseRequestPath(raw)
  if (!path.ok) return ['matched a refused path']
  const prefixed = (route: RoutePolicy['routes'][number]) => route.prefixSegments.every((s, i) => path.segments[i] === s)
  const owner = policy.routes.find(prefixed)
  if (match.kind === 'unknown_prefix') return owner ? [`${owner.prefix} fits but unknown_prefix`] : []
  if (match.route !== owner) return [`route ${match.route.prefix} does not own the path`]
  if (match.kind === 'no_rule') return []

  const found: string[] = []
  const { route, rule, upstreamPath, params } = match
  if (!rule.methods.includes(method as never) && !(method === 'HEAD' && rule.methods.includes('GET'))) found.push(`method ${method} not in ${rule.methods.join(',')}`)
  const bare = path.segments.length === route.prefixSegments.length
  const rest = bare ? [''] : path.segments.slice(route.prefixSegments.length)
  if (rest.length !== rule.segments.length) found.push('segment count differs from the rule')
  rule.segments.forEach((part, i) => {
    const segment = rest[i]
    if (!part.param && segment !== part.value) found.push(`static segment "${part.value}" ≠ "${segment}"`)
    if (part.param && (segment === '' || segment === undefined || params[part.name] !== segment)) found.push(`parameter :${part.name} is "${segment}"`)
  })
  const remainder = path.path.slice(route.prefix.length) || '/'
  if (upstreamPath !== route.rewritePrefix + remainder) found.push(`upstream path ${upstreamPath} ≠ rewrite prefix + ${remainder}`)
  if (!upstreamPath.startsWith(route.rewritePrefix + '/')) found.push('upstream path escapes the rewrite prefix')
  // The upstream, normalising what it receives, must read the very same path.
  const upstreamReads = normaliseRequestPath(upstreamPath)
  if (!upstreamReads.ok || upstreamReads.path !== upstreamPath) found.push(`the upstream would read ${upstreamPath} differently`)
  if (/\/\.\.?(\/|$)|\/\/|\\|%2f|%5c|%2e|%25/i.test(upstreamPath)) found.push('dot-segment or encoded separator sent upstream')
  return found
}

/** A request path that fits one of the policy's rules, with hostile text in its parameters. */
function fittingPath (policy: RoutePolicy): fc.Arbitrary<{ method: string, raw: string }> {
  const candidates = policy.routes.flatMap(route => route.rules.map(rule => ({ route, rule })))
  return fc.tuple(fc.constantFrom(...candidates), fc.array(hostileSegment, { minLength: 4, maxLength: 4 }), fc.nat()).map(([{ route, rule }, values, pick]) => {
    const parts = rule.segments.map((part, i) => part.param ? values[i] ?? 'x' : encodeURIComponent(part.value))
    const raw = route.prefix + '/' + parts.join('/')
    return { method: rule.methods[pick % rule.methods.length] ?? 'GET', raw }
  })
}

const examplePolicy = parseRoutePolicy({
  routes: [
    {
      prefix: '/api',
      upstream: 'http://127.0.0.1:4001',
      allow: [
        { methods: ['GET'], path: '/', roles: ['*'] },
        { methods: ['GET', 'POST'], path: '/orders', roles: ['user'] },
        { methods: ['GET'], path: '/orders/:id', roles: ['user'] },
        { methods: ['GET'], path: '/orders/summary', roles: ['admin'] },
        { methods: ['PUT'], path: '/orders/:id/items/:item', roles: ['user'] },
        { methods: ['DELETE'], path: '/admin/users/:id', roles: ['admin'] },
        { methods: ['OPTIONS'], path: '/orders/', roles: ['*'] },
      ],
    },
    { prefix: '/v2/billing', upstream: 'https://billing.internal:8443', rewritePrefix: '/billing/v2', allow: [{ methods: ['GET'], path: '/invoices/:id', roles: ['*'] }] },
  ],
}, 'example.json')

// Policies valid by construction (distinct one-segment prefixes, well-formed templates), so every run
// exercises matching; a rare duplicate rule is refused and replaced by the fixed example.
const validPolicy: fc.Arbitrary<RoutePolicy> = fc.uniqueArray(fc.constantFrom('/api', '/v2', '/billing', '/x', '/a.b', '/a~b'), { minLength: 1, maxLength: 3 })
  .chain(prefixes => fc.tuple(...prefixes.map(p => fc.record({
    prefix: fc.constant(p),
    upstream: fc.constant('http://127.0.0.1:4001'),
    rewritePrefix: fc.constantFrom('', '/v1', '/base/path'),
    allow: fc.array(fc.record({
      methods: validMethods,
      path: validTemplate,
      roles: fc.constantFrom(['user'], ['*'], ['admin', 'user']),
    }), { minLength: 1, maxLength: 5 }),
  }))))
  .map(routes => {
    try {
      return parseRoutePolicy({ routes }, 'fuzz.json')
    } catch {
      return examplePolicy
    }
  })

describe('parseRoutePolicy under hostile input (property-based)', () => {
  it('compiles a policy of plain prefixes and well-formed templates, or throws RoutePolicyError with one line per problem; nothing else escapes', () => {
    fc.assert(fc.property(policyInput, input => {
      const policy = parseOrRefuse(input)
      if (!policy) return
      for (const route of policy.routes) {
        expect(route.prefix).toMatch(/^(\/[A-Za-z0-9._~-]+)+$/)
        expect(route.prefix).not.toMatch(/^\/(bff|healthz)(\/|$)/)
        expect(route.rewritePrefix).toMatch(/^((\/[A-Za-z0-9._~-]+)+)?$/)
        for (const part of [...route.prefixSegments, ...route.rules.flatMap(r => r.segments.map(s => s.param ? s.name : s.value))]) {
          expect(['.', '..']).not.toContain(part)
          expect(part).not.toMatch(/[%\\;?#/\p{Cc}]/u)
        }
      }
    }), { numRuns: RUNS / 2 })
  })
})

describe('matchRoute under hostile input (property-based)', () => {
  it('the example policy: any method and path either fails to match or matches soundly', () => {
    fc.assert(fc.property(anyMethod, fc.oneof(hostilePath, fittingPath(examplePolicy).map(p => p.raw)), (method, raw) => {
      const path = normaliseRequestPath(raw)
      if (!path.ok) return
      expect(unsoundness(examplePolicy, method, raw, matchRoute(examplePolicy, method, path))).toEqual([])
    }), { numRuns: RUNS })
  })

  it('random valid policies: paths built from their own rules, with hostile parameters, match soundly or not at all', () => {
    fc.assert(fc.property(validPolicy.chain(policy => fc.tuple(fc.constant(policy), fc.oneof(fittingPath(policy), fc.record({ method: anyMethod, raw: hostilePath })))), ([policy, { method, raw }]) => {
      const path = normaliseRequestPath(raw)
      if (!path.ok) return
      expect(unsoundness(policy, method, raw, matchRoute(policy, method, path))).toEqual([])
    }), { numRuns: RUNS / 3 })
  })
})
