/**
 * A route's token policy (`"token"` in the route policy): which credential
 * its upstream gets, and from whom. The schema, its compiled form, the checks
 * that span routes (and the configuration), and what the policy as a whole
 * asks of a login (every audience as an RFC 8707 `resource`).
 *
 * | type            | session needed | the upstream gets                                    |
 * |-----------------|----------------|------------------------------------------------------|
 * | `user`          | yes            | the user's access token                              |
 * | `user-optional` | no             | the user's access token when signed in, else nothing |
 * | `client`        | no             | the gateway's own client-credentials token           |
 * | `none`          | no             | no `Authorization` at all                            |
 */
import { z } from 'zod'
import type { LoginTokenNeeds } from '../auth/login-tokens.js'
import { ConfigError } from '../config.js'

/** What the checks here read of a compiled route (route-policy.ts's CompiledRoute). */
interface TokenRoute {
  token: RouteTokenPolicy
}

export const TOKEN_TYPES = ['user', 'user-optional', 'client', 'none'] as const
export type TokenType = typeof TOKEN_TYPES[number]

/** How a user token narrowed to an audience is obtained. */
export type NarrowingGrant = 'refresh_token' | 'token_exchange'

export interface RouteTokenPolicy {
  type: TokenType
  /**
   * The API the token is for (RFC 8707 resource, the `aud` of its tokens). Undefined: the
   * session's own token (user types) or the IdP's default audience (client).
   */
  audience: string | undefined
  /** The scopes asked for, space-separated (OAuth's `scope`); undefined: whatever the grant gives. */
  scope: string | undefined
  /** How a narrowed user token is obtained: the session's refresh token (default) or RFC 8693 exchange. */
  grant: NarrowingGrant
  /** Tokens bound to a key (RFC 9449), sent as `Authorization: DPoP` with a proof per request. */
  dpop: boolean
}

/** Whether a route's upstream ever gets the user's token. */
export const sendsUserToken = (token: RouteTokenPolicy) => token.type === 'user' || token.type === 'user-optional'

// RFC 6749 section 3.3: a scope token is printable ASCII but space, `"` and `\`.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/

function audienceProblem (audience: string): string | undefined {
  // RFC 8707 section 2: an absolute URI without a fragment.
  const url = URL.parse(audience)
  if (url === null) return 'must be an absolute URI, e.g. https://orders.example'
  if (audience.includes('#')) return 'must not have a fragment'
  return undefined
}

/** Problems of a token policy on its own, each at its key. */
function tokenProblems (token: TokenFields): Array<{ key: keyof TokenFields, message: string }> {
  const problems: Array<{ key: keyof TokenFields, message: string }> = []
  if (token.type === 'none') {
    if (token.audience !== undefined) problems.push({ key: 'audience', message: 'a "none" route sends no token' })
    if (token.scopes !== undefined) problems.push({ key: 'scopes', message: 'a "none" route sends no token' })
    if (token.exchange !== undefined) problems.push({ key: 'exchange', message: 'a "none" route sends no token' })
    if (token.dpop) problems.push({ key: 'dpop', message: 'a "none" route sends no token to bind' })
  } else if (token.type === 'client') {
    if (token.exchange !== undefined) problems.push({ key: 'exchange', message: 'only a user\'s token is exchanged; a "client" route gets the gateway\'s own token' })
  } else {
    // The session's own token comes from the code exchange as it is; only a named API's is narrowed.
    if (token.scopes !== undefined && token.audience === undefined) problems.push({ key: 'scopes', message: 'needs an audience (scopes narrow the token for one API)' })
    if (token.exchange !== undefined && token.audience === undefined) problems.push({ key: 'exchange', message: 'needs an audience (the API to exchange the token for)' })
  }
  return problems
}

const TokenFieldsSchema = z.strictObject({
  type: z.enum(TOKEN_TYPES, {
    error: (issue) => `unknown token type ${JSON.stringify(issue.input)} (allowed: ${TOKEN_TYPES.join(', ')})`,
  }).default('user'),
  audience: z.string().superRefine((value, ctx) => {
    const problem = audienceProblem(value)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  }).optional(),
  scopes: z.array(z.string().regex(SCOPE_TOKEN, 'must be one scope: printable characters, no spaces, quotes or backslashes'))
    .min(1, 'must list at least one scope; leave it out for all the grant gives')
    .optional(),
  exchange: z.enum(['token-exchange'], {
    error: (issue) => `unknown exchange ${JSON.stringify(issue.input)} (the only one is "token-exchange"; leave it out to use the refresh token)`,
  }).optional(),
  dpop: z.boolean().default(false),
})

type TokenFields = z.output<typeof TokenFieldsSchema>

export const TokenSchema = TokenFieldsSchema.superRefine((token, ctx) => {
  for (const { key, message } of tokenProblems(token)) ctx.addIssue({ code: 'custom', path: [key], message })
})

type TokenInput = z.output<typeof TokenSchema>

/** The policy of a route that says nothing about tokens: the session's own token, as before token policies. */
const USER_TOKEN: RouteTokenPolicy = { type: 'user', audience: undefined, scope: undefined, grant: 'refresh_token', dpop: false }

export function compileTokenPolicy (input: TokenInput | undefined): RouteTokenPolicy {
  if (input === undefined) return USER_TOKEN
  return {
    type: input.type,
    audience: input.audience,
    scope: input.scopes === undefined ? undefined : [...new Set(input.scopes)].join(' '),
    grant: input.exchange === 'token-exchange' ? 'token_exchange' : 'refresh_token',
    dpop: input.dpop,
  }
}

/**
 * Problems of a route that depend on its token policy, each at its key: every rule of a `user`
 * route names its roles, and DPoP is not for WebSocket routes.
 */
export function routeTokenProblems (route: { token?: TokenFields | undefined, websocket: boolean, allow: ReadonlyArray<{ roles?: unknown }> }): Array<{ path: Array<string | number>, message: string }> {
  const problems: Array<{ path: Array<string | number>, message: string }> = []
  const type = route.token?.type ?? 'user'
  // A WebSocket handshake goes through another client, which cannot answer a DPoP nonce challenge.
  if (route.token?.dpop === true && route.websocket) problems.push({ path: ['token', 'dpop'], message: 'not supported on a route with "websocket": true' })
  if (type === 'user') {
    route.allow.forEach((rule, index) => {
      if (rule.roles === undefined) problems.push({ path: ['allow', index, 'roles'], message: 'is required' })
    })
  }
  return problems
}

/**
 * Problems between routes that share a token: a session keeps one token per audience (and one
 * of its own for routes without one), so routes that share an audience must ask for its token
 * the same way.
 */
export function sharedTokenProblems (routes: readonly TokenRoute[]): string[] {
  const problems: string[] = []
  const first = new Map<string, number>()
  routes.forEach((route, index) => {
    const { token } = route
    if (!sendsUserToken(token)) return
    const key = token.audience ?? ''
    const earlier = first.get(key)
    if (earlier === undefined) {
      first.set(key, index)
      return
    }
    const other = (routes[earlier] as TokenRoute).token
    const differ = [
      ...(other.scope !== token.scope ? ['scopes'] : []),
      ...(other.grant !== token.grant ? ['exchange'] : []),
      ...(other.dpop !== token.dpop ? ['dpop'] : []),
    ]
    if (differ.length === 0) return
    const whose = token.audience === undefined ? 'the session\'s own token (no audience)' : `the token for "${token.audience}"`
    problems.push(`routes[${index}].token: ${whose} is also routes[${earlier}]'s, which asks for it with other ${differ.join(', ')}; routes sharing a token must ask for it the same way`)
  })
  return problems
}

/**
 * Problems of the policy against the configuration: a user token's scopes must be among those the
 * login asks for (`OIDC_SCOPES`), else the user never granted them. One line per problem, naming
 * the route.
 */
export function policyConfigProblems (routes: readonly TokenRoute[], oidcScopes: string): string[] {
  const granted = new Set(oidcScopes.split(/\s+/).filter(Boolean))
  const problems: string[] = []
  routes.forEach((route, index) => {
    const { token } = route
    if (!sendsUserToken(token) || token.scope === undefined) return
    const missing = token.scope.split(' ').filter((scope) => !granted.has(scope))
    if (missing.length > 0) {
      problems.push(`routes[${index}].token.scopes: ${missing.map((scope) => `"${scope}"`).join(', ')} not in OIDC_SCOPES; the login never asks the user for ${missing.length === 1 ? 'it' : 'them'}`)
    }
  })
  return problems
}

/**
 * Refuses a policy that does not fit the configuration (see `policyConfigProblems`).
 * @throws ConfigError with one `ROUTES_FILE: …` line per problem
 */
export function checkPolicyAgainstConfig (policy: { routes: readonly TokenRoute[] }, config: { oidc: { scopes: string } }): void {
  const problems = policyConfigProblems(policy.routes, config.oidc.scopes)
  if (problems.length > 0) throw new ConfigError(problems.map((problem) => `ROUTES_FILE: ${problem}`))
}

/** What the route policy asks of every login and of the session's own token. */
export function loginTokenNeeds (routes: readonly TokenRoute[]): LoginTokenNeeds {
  const userRoutes = routes.filter((route) => sendsUserToken(route.token))
  return {
    audiences: [...new Set(userRoutes.flatMap((route) => route.token.audience ?? []))],
    sessionTokenDpop: userRoutes.some((route) => route.token.audience === undefined && route.token.dpop),
    anyUserDpop: userRoutes.some((route) => route.token.dpop),
  }
}
