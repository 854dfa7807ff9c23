/**
 * The gate every proxied request passes before anything is forwarded: one
 * table of checks, in the order they run. Each check lets the request on
 * (returns), refuses it (throws one of gateway/errors.ts), or has to wait for
 * I/O (returns a promise: a store read, a token refresh). The gate runs the
 * checks one after the other and makes no promise of its own until a check
 * returns one, so the common request (a cached session, a fresh token) is
 * decided without any.
 *
 * By the time a request gets here, the edge has checked what every request
 * meets (one Host, a canonical path, Sec-Fetch-Site, a WebSocket's Origin), and
 * the prefix has chosen the route (an unknown prefix is a 404 before the gate).
 *
 * The route's token policy decides whether a session is needed (`user`) and
 * what credential goes upstream: the user's token (the session's own or one
 * narrowed to the route's API), the gateway's own client token, or none.
 * The policy is read once, as the request enters the gate, and that object
 * (and the route matched in it) serves the request to its end, whatever a
 * reload does meanwhile (route-policy-reload.ts).
 */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Forbidden, InvalidRequest, NotFound, PayloadTooLarge, StepUpRequired, Unauthenticated } from '../errors.js'
import type { ActiveSession } from '../session/active-session.js'
import { stepUpLoginUrl, stepUpReturnTo, stepUpShortfall } from '../auth/step-up.js'
import type { ClientTokens } from '../auth/client-tokens.js'
import type { DpopKey } from '../auth/dpop-key.js'
import type { UserTokens, UserTokenTarget } from '../auth/user-tokens.js'
import { declaredLengthExceeds, limitBody } from './body-limit.js'
import { hasMethodParam, METHOD_PARAM_REFUSED } from './method-override.js'
import { canonicalPathOf } from './normalise-path.js'
import { isAllowedForRoles, matchRoute, type CompiledRoute, type RouteMatch, type RoutePolicy } from './route-policy.js'
import { loginTokenNeeds, sendsUserToken } from './token-policy.js'
import type { RoutePolicyHolder } from './route-policy-reload.js'
import { upgradeKind } from './websocket.js'

/** Where an admitted request goes, with which token, through which route. */
export interface Forward {
  /** The upstream path, canonical and rewritten; the query string is added as the browser sent it. */
  path: string
  /** The token the upstream gets in `Authorization`; undefined: none at all. */
  accessToken: string | undefined
  /** The key to prove possession of `accessToken` with (RFC 9449), when it is DPoP-bound. */
  dpopKey: DpopKey | undefined
  /** The route the request was admitted by, from the policy it started under: where and how it is sent. */
  route: CompiledRoute
  /**
   * The answer is for one signed-in user alone: the upstream got the user's token, or the rule
   * admitted only users with a role. Such answers are kept out of shared caches.
   */
  admittedWithSession: boolean
  /** Seconds from sending the request upstream to its answer (whole, if small; its head, if streamed) or failure; -1 until then. */
  upstreamSeconds: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once the gate let the request through. */
    bffForward: Forward | null
  }
}

/** One request on its way through the gate: what the checks have found out so far. */
interface Passage {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The policy in force when the request reached the gate; a reload meanwhile does not change it. */
  readonly policy: RoutePolicy
  session: ActiveSession | undefined
  match: Exclude<RouteMatch, { kind: 'unknown_prefix' }> | undefined
  /** What goes upstream in `Authorization`, once chosen. */
  accessToken: string | undefined
  dpopKey: DpopKey | undefined
  /** A token call was made for this request (so its token was not a kept one). */
  fetched: boolean
}

type Check = (passage: Passage) => void | Promise<void>

export interface GateOptions {
  policy: Pick<RoutePolicyHolder, 'current'>
  /** The user's tokens: the session's own, and those narrowed to an API. */
  userTokens: UserTokens
  /** The gateway's own client-credentials tokens. */
  clientTokens: ClientTokens
  /** A request is sent with a token already kept (no token call). */
  tokenCacheHit?: (route: CompiledRoute) => void
  /** The CSRF layer's check of an unsafe request's Origin and token (edge/csrf.ts). */
  checkCsrf: (request: FastifyRequest, session: ActiveSession | undefined) => void
  /** Largest request body forwarded, in bytes. */
  bodyLimit: number
  /** PUBLIC_URL's origin: a step-up returns to the page that asked only if the page is ours. */
  publicOrigin: string
  /** A session fell short of a rule's `acr` / `maxAge` (metrics). */
  onStepUp?: () => void
  now?: () => number
}

// Node sets `upgrade` on requests that asked to switch protocols; @types/node does not declare it.
type UpgradableMessage = IncomingMessage & { upgrade?: boolean }

/** The gate as a Fastify `preHandler` for a proxied route. */
export function createGate (options: GateOptions) {
  const { userTokens, clientTokens } = options
  const now = options.now ?? Date.now
  const tokenCacheHit = options.tokenCacheHit ?? (() => {})
  // Judging roles on a route that sends no user token still wants the newest roles: those of the
  // session's own token, kept bound as the routes that do send it want it.
  // A reload may not change it (route-policy-reload.ts: what a login asks for needs a restart).
  const ownToken: UserTokenTarget = {
    audience: undefined, scope: undefined, grant: 'refresh_token', dpop: loginTokenNeeds(options.policy.current.routes).sessionTokenDpop,
  }

  /**
   * The request's session (cookie → cache or store, bound to its client by the session layer):
   * required on `user` routes, read when there is one on the others.
   */
  const session: Check = (passage) => {
    const required = matched(passage).route.token.type === 'user'
    const loaded = passage.request.loadSession()
    if (loaded instanceof Promise) {
      return loaded.then((found) => {
        if (!found && required) throw new Unauthenticated()
        passage.session = found
      })
    }
    if (!loaded && required) throw new Unauthenticated()
    passage.session = loaded
  }

  /** Unsafe methods: an allowed Origin, and the session's CSRF token when there is a session. */
  const csrf: Check = (passage) => options.checkCsrf(passage.request, passage.session)

  /** The canonical path and method against the route's rules. */
  const rule: Check = (passage) => {
    const { request } = passage
    // The edge has checked the path already; this is the same, remembered result.
    const match = matchRoute(passage.policy, request.method, request.bffPath ?? canonicalPathOf(request.raw.url ?? ''))
    // The prefix was registered at start-up, and a reload has dropped it since: as if it had never been.
    if (match.kind === 'unknown_prefix') throw new NotFound()
    passage.match = match
  }

  /** What the request asks of the upstream besides a path: a protocol switch, a body's size, another method. */
  const shape: Check = (passage) => {
    const { request, reply } = passage
    const route = matched(passage).route
    upgradeKind({ method: request.method, headers: request.headers, upgrade: (request.raw as UpgradableMessage).upgrade === true }, route.websocket)
    if (declaredLengthExceeds(request.headers['content-length'], options.bodyLimit)) {
      // Once reading of the body stops half-way, the connection cannot carry another request.
      reply.header('connection', 'close')
      throw new PayloadTooLarge()
    }
    if (!route.allowMethodParam) {
      const url = request.raw.url ?? ''
      const queryAt = url.indexOf('?')
      if (queryAt !== -1 && hasMethodParam(url.slice(queryAt + 1))) throw new InvalidRequest(METHOD_PARAM_REFUSED)
    }
  }

  /** A method and path no rule allows is refused before any token is spent on it. */
  const allowedAtAll: Check = (passage) => {
    if (passage.match?.kind !== 'allowed') throw new Forbidden()
  }

  /**
   * The user's token with life left (and bound as the route says), obtained first if it is near
   * expiry or not yet had: the route's token when it sends one, else the session's own when the
   * rule judges roles.
   */
  const freshToken: Check = (passage) => {
    const current = passage.session
    if (current === undefined) return
    const { route, rule } = allowed(passage)
    const target = sendsUserToken(route.token) ? route.token : rule.open ? undefined : ownToken
    if (target === undefined || !userTokens.stale(current, target)) return
    passage.fetched = true
    return userTokens.obtain(current, target).then((fresh) => {
      passage.session = fresh
      passage.request.useSession(fresh)
    })
  }

  /** The rule's roles, judged on the newest tokens' roles; a rule without roles admits anyone. */
  const roles: Check = (passage) => {
    const { rule } = allowed(passage)
    if (rule.open) return
    if (passage.session === undefined) throw new Unauthenticated()
    if (!isAllowedForRoles(rule, passage.session.secrets.roles)) throw new Forbidden()
  }

  /** What goes upstream in `Authorization`: the user's token, the gateway's own, or nothing. */
  const credential: Check = (passage) => {
    const { route } = allowed(passage)
    const { token } = route
    if (token.type === 'none') return
    if (token.type === 'client') {
      const kept = clientTokens.current(token)
      if (kept === undefined) {
        return clientTokens.obtain(token).then((fetched) => {
          passage.accessToken = fetched.token
          passage.dpopKey = fetched.dpopKey
        })
      }
      tokenCacheHit(route)
      passage.accessToken = kept.token
      passage.dpopKey = kept.dpopKey
      return
    }
    const current = passage.session
    if (current === undefined) return
    if (!passage.fetched) tokenCacheHit(route)
    passage.accessToken = userTokens.token(current, token)
    passage.dpopKey = token.dpop ? userTokens.dpopKey(current, token) : undefined
  }

  /** The rule's step-up: a sign-in with one of its `acr` values, at most `maxAge` seconds ago. */
  const stepUp: Check = (passage) => {
    const { stepUp: required } = allowed(passage).rule
    if (!required) return
    if (passage.session === undefined) throw new Unauthenticated()
    const need = stepUpShortfall(required, passage.session, now())
    if (!need) return
    options.onStepUp?.()
    const referer = passage.request.headers.referer
    throw new StepUpRequired(stepUpLoginUrl(need, stepUpReturnTo(referer, options.publicOrigin)))
  }

  /** Let through: where it goes and with which token; a body is counted as it streams. */
  const admit: Check = (passage) => {
    const { request } = passage
    const match = allowed(passage)
    request.bffForward = {
      path: match.upstreamPath,
      accessToken: passage.accessToken,
      dpopKey: passage.dpopKey,
      route: match.route,
      admittedWithSession: passage.session !== undefined && (sendsUserToken(match.route.token) || !match.rule.open),
      upstreamSeconds: -1,
    }
    if (request.body instanceof Readable) request.body = limitBody(request.body, options.bodyLimit)
    if ((request.raw as UpgradableMessage).upgrade === true) {
      // A WebSocket handshake (`shape` refused any other upgrade). @fastify/http-proxy derives its
      // upstream path from the request URL: make that the canonical path that was matched.
      const raw = request.raw.url ?? ''
      const queryAt = raw.indexOf('?')
      const path = request.bffPath?.path ?? ''
      const remainder = path.slice(match.route.prefix.length) || '/'
      request.raw.url = match.route.prefix + remainder + (queryAt === -1 ? '' : raw.slice(queryAt))
    }
  }

  // The rule comes first (without refusing yet): the route's token type says whether a session is needed,
  // and a prefix a reload dropped is a 404 with or without a session, like one that never was. The
  // request's shape next: a body over the limit or a `_method` is refused before any session is read.
  const checks: readonly Check[] = [rule, shape, session, csrf, allowedAtAll, freshToken, roles, stepUp, credential, admit]

  return function gate (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    runChecks(checks, 0, {
      request, reply, policy: options.policy.current, session: undefined, match: undefined, accessToken: undefined, dpopKey: undefined, fetched: false,
    }, done)
  }
}

/** The match, once `rule` has run. */
function matched (passage: Passage): NonNullable<Passage['match']> {
  return passage.match as NonNullable<Passage['match']>
}

/** The match, once `allowedAtAll` has let the request on. */
function allowed (passage: Passage): Extract<RouteMatch, { kind: 'allowed' }> {
  return passage.match as Extract<RouteMatch, { kind: 'allowed' }>
}

/** Runs `checks` from `from` on; synchronously until one returns a promise, then after it settles. */
function runChecks (checks: readonly Check[], from: number, passage: Passage, done: (error?: Error) => void): void {
  for (let i = from; i < checks.length; i++) {
    let pending: void | Promise<void>
    try {
      pending = (checks[i] as Check)(passage)
    } catch (error) {
      done(error as Error)
      return
    }
    if (pending instanceof Promise) {
      pending.then(() => runChecks(checks, i + 1, passage, done), done)
      return
    }
  }
  done()
}
