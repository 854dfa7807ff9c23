import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ConfigError } from '../config.js'
import type { NormalisedPath } from './normalise-path.js'
import { ACR_VALUE } from '../auth/login-options.js'
import type { StepUpNeed } from '../auth/step-up.js'
import { routeTokenProblems, sharedTokenProblems, TokenSchema, compileTokenPolicy, type RouteTokenPolicy } from './token-policy.js'

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type HttpMethod = typeof HTTP_METHODS[number]

/** The role that lets any signed-in user through a rule; it must be a rule's only role. */
export const ANY_SIGNED_IN_USER = '*'

// Node turns longer timers into 1 ms ones, which would make every call time out.
const MAX_TIMEOUT_MS = 2_147_483_647

// The gateway's own endpoints; a route prefix there would shadow them.
const RESERVED_PREFIXES = ['/bff', '/healthz']

export type TemplateSegment =
  | { param: false, value: string }
  | { param: true, name: string }

export interface CompiledRule {
  /** The rule's template as written, e.g. `/orders/:id`. */
  path: string
  /** As written; HEAD is also allowed wherever GET is. */
  methods: readonly HttpMethod[]
  /** Empty when the rule names none (`open`). */
  roles: readonly string[]
  /** True when roles is `["*"]`. */
  anyRole: boolean
  /** The rule's `acr` and `maxAge`: how the session must have signed in (see gate.ts); absent when it says neither. */
  stepUp?: StepUpNeed
  /** The rule names no roles: it admits anyone, signed in or not (only routes whose token type is not `user` may say so). */
  open: boolean
  /** Static segments hold decoded text, compared exactly with decoded request segments. */
  segments: readonly TemplateSegment[]
}

export interface CompiledRoute {
  prefix: string
  /** Origin only (`http://host:port`), no trailing slash. */
  upstream: string
  rewritePrefix: string
  /** Upstream response timeout; undefined means the proxy's default. */
  timeoutMs: number | undefined
  websocket: boolean
  /**
   * Whether a `_method` parameter (query string, form or multipart body) may pass to the upstream.
   * Frameworks such as Rails and Laravel read it as the request's method, so by default it is refused.
   */
  allowMethodParam: boolean
  rules: readonly CompiledRule[]
  /** What credential the upstream gets (token-policy.ts). */
  token: RouteTokenPolicy
  prefixSegments: readonly string[]
  /** Method → segment count → rules, most specific first. */
  rulesByMethod: ReadonlyMap<string, ReadonlyMap<number, readonly CompiledRule[]>>
}

export interface RoutePolicy {
  routes: readonly CompiledRoute[]
  /** The `routes` as written (the file's JSON, before defaults), for operators to read back. */
  writtenRoutes: readonly unknown[]
  /** SHA-256 (hex) of the policy file's bytes; of its JSON text for a policy that came from no file. */
  sha256: string
}

export type RouteMatch =
  | { kind: 'unknown_prefix' }
  | { kind: 'no_rule', route: CompiledRoute }
  | {
    kind: 'allowed'
    route: CompiledRoute
    rule: CompiledRule
    /** rewritePrefix + the path after the prefix, canonically encoded; the caller appends the query. */
    upstreamPath: string
    /** Decoded parameter values, on a prototype-less object. */
    params: Record<string, string>
  }

/** A route policy that cannot be used; `problems` holds one plain line per problem, each naming its place. */
export class RoutePolicyError extends Error {
  override name = 'RoutePolicyError'
  readonly source: string
  readonly problems: readonly string[]

  constructor (source: string, problems: readonly string[], options?: ErrorOptions) {
    super(problems.map((problem) => `${source}: ${problem}`).join('\n'), options)
    this.source = source
    this.problems = problems
  }
}

/**
 * Reads, validates and compiles the route policy file (`ROUTES_FILE`).
 *
 * @throws RoutePolicyError when the file cannot be read, is not JSON, or is not a valid policy.
 */
export async function loadRoutePolicyFile (path: string): Promise<RoutePolicy> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    throw new RoutePolicyError(path, [`cannot be read: ${(err as Error).message}`], { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new RoutePolicyError(path, [`is not valid JSON: ${(err as Error).message}`], { cause: err })
  }
  return compilePolicy(json, path, sha256Hex(bytes))
}

/**
 * The route policy of a configuration (`ROUTES_FILE`), for start-up and reload.
 *
 * @throws ConfigError with one `ROUTES_FILE: …` line per problem, as every
 * other configuration problem is reported.
 */
export async function loadRoutePolicy (routesFile: string): Promise<RoutePolicy> {
  try {
    return await loadRoutePolicyFile(routesFile)
  } catch (error) {
    if (error instanceof RoutePolicyError) throw new ConfigError(error.problems.map(p => `ROUTES_FILE: ${p}`), { cause: error })
    throw error
  }
}

/**
 * Validates a route policy and compiles it for matching.
 *
 * Refused, among others: unknown keys, nested or duplicate prefixes, upstreams
 * with a path, query, fragment or credentials, unknown methods, parameters
 * that are not a whole segment, wildcards, and empty role lists (a rule for
 * any signed-in user says `"roles": ["*"]`). Two rules of one route may not
 * allow the same method on the same template shape.
 *
 * A rule may also ask for a step-up: `acr` (the session signed in with one of
 * these authentication context classes) and/or `maxAge` (at most this many
 * seconds ago); see gate.ts.
 *
 * `allowMethodParam` (default false) lets requests to the route carry a
 * `_method` parameter, in the query string or a form or multipart body; it
 * is for upstreams that rely on it and apply their policy to the method it
 * names, since the gateway's rules only ever see the request's real method.
 *
 * @param source names the policy in error messages, usually the file path
 * @throws RoutePolicyError listing every problem found
 */
export function parseRoutePolicy (json: unknown, source: string): RoutePolicy {
  return compilePolicy(json, source, sha256Hex(JSON.stringify(json) ?? ''))
}

function compilePolicy (json: unknown, source: string, sha256: string): RoutePolicy {
  const parsed = PolicySchema.safeParse(json, { reportInput: true })
  if (!parsed.success) throw new RoutePolicyError(source, parsed.error.issues.flatMap(describeIssue))

  const routes = parsed.data.routes.map(compileRoute)
  const problems = [...prefixOverlaps(routes), ...routes.flatMap(duplicateRules), ...sharedTokenProblems(routes)]
  if (problems.length > 0) throw new RoutePolicyError(source, problems)
  // The schema accepted it, so it is an object with a `routes` array.
  return { routes, writtenRoutes: (json as { routes: unknown[] }).routes, sha256 }
}

function sha256Hex (bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Finds the route and rule for a request. Call it with the output of
 * `normaliseRequestPath`; it does not check roles (see `isAllowedForRoles`).
 *
 * A prefix matches at a segment boundary (`/api` matches `/api` and `/api/x`,
 * not `/apix`); the bare prefix is the rule path `/`. When several rules fit,
 * the most specific wins: a static segment beats a parameter at the first
 * place they differ. HEAD is allowed wherever GET is.
 */
export function matchRoute (
  policy: RoutePolicy,
  method: string,
  path: Pick<NormalisedPath, 'path' | 'segments'>
): RouteMatch {
  const route = policy.routes.find((candidate) => hasPrefix(path.segments, candidate.prefixSegments))
  if (route === undefined) return { kind: 'unknown_prefix' }

  const bare = path.segments.length === route.prefixSegments.length
  const segments = bare ? ROOT_SEGMENTS : path.segments
  const offset = bare ? 0 : route.prefixSegments.length
  const candidates = route.rulesByMethod.get(method)?.get(segments.length - offset)
  const rule = candidates?.find((candidate) => fitsTemplate(candidate.segments, segments, offset))
  if (rule === undefined) return { kind: 'no_rule', route }

  // The prefix is plain unreserved characters, so its canonical encoding is
  // itself and the encoded remainder is simply what follows it.
  const remainder = path.path.slice(route.prefix.length)
  return {
    kind: 'allowed',
    route,
    rule,
    upstreamPath: route.rewritePrefix + (remainder === '' ? '/' : remainder),
    params: paramsOf(rule.segments, segments, offset),
  }
}

/** Whether a user with these roles may use the rule: any one of its roles suffices, `*` lets everyone in. */
export function isAllowedForRoles (rule: CompiledRule, roles: readonly string[]): boolean {
  return rule.open || rule.anyRole || roles.some((role) => rule.roles.includes(role))
}

const ROOT_SEGMENTS: readonly string[] = ['']

function hasPrefix (segments: readonly string[], prefix: readonly string[]): boolean {
  if (segments.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) {
    if (segments[i] !== prefix[i]) return false
  }
  return true
}

function fitsTemplate (template: readonly TemplateSegment[], segments: readonly string[], offset: number): boolean {
  for (let i = 0; i < template.length; i++) {
    const part = template[i] as TemplateSegment
    const segment = segments[offset + i] as string
    if (part.param ? segment === '' : segment !== part.value) return false
  }
  return true
}

function paramsOf (template: readonly TemplateSegment[], segments: readonly string[], offset: number): Record<string, string> {
  const params: Record<string, string> = Object.create(null)
  template.forEach((part, i) => {
    if (part.param) params[part.name] = segments[offset + i] as string
  })
  return params
}

// ---- schema --------------------------------------------------------------

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
// Prefixes and rewrite prefixes are limited to unreserved characters so that
// their written, decoded and encoded forms are all the same string.
const PLAIN_PATH = /^(\/[A-Za-z0-9._~-]+)+$/
const TEMPLATE_FORBIDDEN = /[%?#\\;*\p{Cc}\p{White_Space}]/u

function prefixProblem (prefix: string): string | undefined {
  const problem = plainPathProblem(prefix)
  if (problem !== undefined) return problem
  const reserved = RESERVED_PREFIXES.find((name) => prefix === name || prefix.startsWith(name + '/'))
  if (reserved !== undefined) return `"${reserved}" is reserved for the gateway's own endpoints`
  return undefined
}

function rewritePrefixProblem (rewritePrefix: string): string | undefined {
  return rewritePrefix === '' ? undefined : plainPathProblem(rewritePrefix)
}

function plainPathProblem (path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/"'
  if (path.endsWith('/')) return 'must not end with "/"'
  if (path.includes('//')) return 'must not contain "//"'
  if (path.includes(':') || path.includes('*')) return 'must be literal: no ":" parameters or "*" wildcards'
  if (path.split('/').some(isDotSegment)) return 'must not contain "." or ".." segments'
  if (!PLAIN_PATH.test(path)) return 'may only contain letters, digits, "-", ".", "_", "~" and "/"'
  return undefined
}

function upstreamProblem (upstream: string): string | undefined {
  let url: URL
  try {
    url = new URL(upstream)
  } catch {
    return 'must be an absolute http or https URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http or https URL'
  if (url.username !== '' || url.password !== '') return 'must not contain credentials'
  if (upstream.includes('?')) return 'must not have a query'
  if (upstream.includes('#')) return 'must not have a fragment'
  if (url.pathname !== '/') return 'must not have a path; use rewritePrefix'
  return undefined
}

function templateProblem (template: string): string | undefined {
  if (!template.startsWith('/')) return 'must start with "/"'
  const parts = template.split('/').slice(1)
  const names = new Set<string>()
  for (const [i, part] of parts.entries()) {
    if (part === '' && i < parts.length - 1) return 'must not contain "//"'
    if (isDotSegment(part)) return 'must not contain "." or ".." segments'
    if (part.includes('*')) return 'wildcards ("*") are not supported; list each path'
    if (TEMPLATE_FORBIDDEN.test(part)) {
      return 'must not contain "%", "?", "#", "\\", ";", spaces or control characters (write segments decoded)'
    }
    if (part.startsWith(':')) {
      const name = part.slice(1)
      if (!PARAM_NAME.test(name)) return `invalid parameter "${part}": a name is a letter or "_" followed by letters, digits or "_"`
      if (names.has(name)) return `parameter ":${name}" appears twice`
      names.add(name)
    } else if (part.includes(':')) {
      return `a parameter must be a whole segment ("${part}")`
    }
  }
  return undefined
}

function timeoutProblem (timeoutMs: number): string | undefined {
  return Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMEOUT_MS
    ? undefined
    : `must be a whole number of milliseconds between 1 and ${MAX_TIMEOUT_MS}`
}

function maxAgeProblem (maxAge: number): string | undefined {
  if (!Number.isInteger(maxAge)) return 'must be a whole number of seconds'
  return maxAge >= 1 ? undefined : 'must be at least 1 second'
}

function rolesProblem (roles: readonly string[]): string | undefined {
  if (roles.includes(ANY_SIGNED_IN_USER) && roles.length > 1) {
    return `"${ANY_SIGNED_IN_USER}" (any signed-in user) must be the only role`
  }
  return undefined
}

function isDotSegment (segment: string): boolean {
  return segment === '.' || segment === '..'
}

function check<T> (problemOf: (value: T) => string | undefined) {
  return (value: T, ctx: z.RefinementCtx) => {
    const problem = problemOf(value)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  }
}

const MethodSchema = z.enum(HTTP_METHODS, {
  error: (issue) => `unknown method ${JSON.stringify(issue.input)} (allowed: ${HTTP_METHODS.join(', ')})`,
})

const RuleSchema = z.strictObject({
  methods: z.array(MethodSchema).min(1, 'must list at least one method'),
  path: z.string().superRefine(check(templateProblem)),
  // Required on `user` routes (a cross-check below, since it depends on the route's token type).
  roles: z.array(z.string().min(1, 'must not be empty'))
    .min(1, `must list at least one role; use ["${ANY_SIGNED_IN_USER}"] for any signed-in user`)
    .superRefine(check(rolesProblem))
    .optional(),
  acr: z.array(z.string().regex(ACR_VALUE, 'must be an acr value: 1 to 256 printable ASCII characters, no space, " or \\'))
    .min(1, 'must list at least one acr value (any one of them suffices)')
    .optional(),
  maxAge: z.number().superRefine(check(maxAgeProblem)).optional(),
})

const RouteSchema = z.strictObject({
  prefix: z.string().superRefine(check(prefixProblem)),
  upstream: z.string().superRefine(check(upstreamProblem)),
  rewritePrefix: z.string().superRefine(check(rewritePrefixProblem)).default(''),
  timeoutMs: z.number().superRefine(check(timeoutProblem)).optional(),
  websocket: z.boolean().default(false),
  allowMethodParam: z.boolean().default(false),
  token: TokenSchema.optional(),
  allow: z.array(RuleSchema).min(1, 'must list at least one rule'),
}).superRefine((route, ctx) => {
  for (const { path, message } of routeTokenProblems(route)) ctx.addIssue({ code: 'custom', path, message })
})

const PolicySchema = z.strictObject({
  routes: z.array(RouteSchema).min(1, 'must list at least one route'),
})

type RouteInput = z.output<typeof RouteSchema>
type RuleInput = z.output<typeof RuleSchema>

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
}

function describeIssue (issue: z.core.$ZodIssue): string[] {
  const at = location(issue.path)
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${location([...issue.path, key])}: unknown key`)
  }
  if (issue.code === 'invalid_type') {
    const missing = 'input' in issue && issue.input === undefined
    return [`${at}: ${missing ? 'is required' : `must be ${EXPECTED[issue.expected] ?? issue.expected}`}`]
  }
  return [`${at}: ${issue.message}`]
}

function location (path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'top level'
  return path.map((key, i) => typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`).join('')
}

// ---- compilation and cross-checks ---------------------------------------

function compileRoute (input: RouteInput): CompiledRoute {
  const rules = input.allow.map(compileRule)
  return {
    prefix: input.prefix,
    upstream: new URL(input.upstream).origin,
    rewritePrefix: input.rewritePrefix,
    timeoutMs: input.timeoutMs,
    websocket: input.websocket,
    allowMethodParam: input.allowMethodParam,
    rules,
    token: compileTokenPolicy(input.token),
    prefixSegments: input.prefix.split('/').slice(1),
    rulesByMethod: indexRules(rules),
  }
}

function compileRule (input: RuleInput): CompiledRule {
  return {
    path: input.path,
    methods: input.methods,
    roles: input.roles ?? [],
    anyRole: input.roles?.includes(ANY_SIGNED_IN_USER) ?? false,
    open: input.roles === undefined,
    ...(input.acr !== undefined || input.maxAge !== undefined
      ? { stepUp: { ...(input.acr !== undefined ? { acrValues: input.acr } : {}), ...(input.maxAge !== undefined ? { maxAge: input.maxAge } : {}) } }
      : {}),
    segments: input.path.split('/').slice(1).map((part): TemplateSegment =>
      part.startsWith(':') ? { param: true, name: part.slice(1) } : { param: false, value: part }),
  }
}

function effectiveMethods (rule: CompiledRule): Set<string> {
  const methods = new Set<string>(rule.methods)
  if (methods.has('GET')) methods.add('HEAD')
  return methods
}

function indexRules (rules: readonly CompiledRule[]): Map<string, Map<number, CompiledRule[]>> {
  const index = new Map<string, Map<number, CompiledRule[]>>()
  for (const rule of rules) {
    for (const method of effectiveMethods(rule)) {
      let bySize = index.get(method)
      if (bySize === undefined) index.set(method, bySize = new Map())
      const list = bySize.get(rule.segments.length)
      if (list === undefined) bySize.set(rule.segments.length, [rule])
      else list.push(rule)
    }
  }
  for (const bySize of index.values()) {
    for (const list of bySize.values()) list.sort(bySpecificity)
  }
  return index
}

// At the first place two templates of one length differ, the one with a static
// segment sorts first; so the first template that fits a path is the most specific.
function bySpecificity (a: CompiledRule, b: CompiledRule): number {
  for (let i = 0; i < a.segments.length; i++) {
    const aParam = a.segments[i]?.param === true
    const bParam = b.segments[i]?.param === true
    if (aParam !== bParam) return aParam ? 1 : -1
  }
  return 0
}

function prefixOverlaps (routes: readonly CompiledRoute[]): string[] {
  const problems: string[] = []
  routes.forEach((route, j) => {
    const i = routes.findIndex((other, k) => k < j &&
      (hasPrefix(route.prefixSegments, other.prefixSegments) || hasPrefix(other.prefixSegments, route.prefixSegments)))
    const earlier = routes[i]
    if (earlier === undefined) return
    problems.push(earlier.prefix === route.prefix
      ? `routes[${j}].prefix: "${route.prefix}" is also routes[${i}].prefix`
      : `routes[${j}].prefix: "${route.prefix}" overlaps routes[${i}].prefix "${earlier.prefix}"; prefixes must not nest`)
  })
  return problems
}

function duplicateRules (route: CompiledRoute, routeIndex: number): string[] {
  const problems: string[] = []
  const seen = new Map<string, number>()
  route.rules.forEach((rule, ruleIndex) => {
    const shape = rule.segments.map((part) => part.param ? ':' : part.value).join('/')
    for (const method of effectiveMethods(rule)) {
      const earlier = seen.get(`${method} ${shape}`)
      if (earlier === undefined) {
        seen.set(`${method} ${shape}`, ruleIndex)
        continue
      }
      const explicit = rule.methods.includes('HEAD') && route.rules[earlier]?.methods.includes('HEAD')
      const implied = method === 'HEAD' && !explicit ? ' (GET implies HEAD)' : ''
      problems.push(`routes[${routeIndex}].allow[${ruleIndex}]: ${method} ${rule.path} is already allowed by allow[${earlier}]${implied}`)
      return
    }
  })
  return problems
}
