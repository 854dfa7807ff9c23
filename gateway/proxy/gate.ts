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
 * The policy is read once, as the request enters the gate, and that object
 * (and the route matched in it) serves the request to its end, whatever a
 * reload does meanwhile (route-policy-reload.ts).
 */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Forbidden, InvalidRequest, NotFound, PayloadTooLarge, StepUpRequired, Unauthenticated } from '../errors.js'
import type { ActiveSession } from '../session/active-session.js'
import type { TokenRefresher } from '../auth/token-refresher.js'
import { stepUpLoginUrl, stepUpReturnTo, stepUpShortfall } from '../auth/step-up.js'
import { declaredLengthExceeds, limitBody } from './body-limit.js'
import { hasMethodParam, METHOD_PARAM_REFUSED } from './method-override.js'
import { canonicalPathOf } from './normalise-path.js'
import { isAllowedForRoles, matchRoute, type CompiledRoute, type RouteMatch, type RoutePolicy } from './route-policy.js'
import type { RoutePolicyHolder } from './route-policy-reload.js'
import { upgradeKind } from './websocket.js'

/** Where an admitted request goes, with which token, through which route. */
export interface Forward {
  /** The upstream path, canonical and rewritten; the query string is added as the browser sent it. */
  path: string
  accessToken: string
  /** The route's prefix, which names the upstream in metrics. */
  upstream: string
  /** The route the request was admitted by, from the policy it started under: where and how it is sent. */
  route: CompiledRoute
  /** The request was let through for a signed-in user: its answer is that user's alone. */
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
}

type Check = (passage: Passage) => void | Promise<void>

export interface GateOptions {
  policy: Pick<RoutePolicyHolder, 'current'>
  tokens: TokenRefresher
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
  const { tokens } = options
  const now = options.now ?? Date.now

  /** The request's session (cookie → cache or store, bound to its client by the session layer). */
  const session: Check = (passage) => {
    const loaded = passage.request.loadSession()
    if (loaded instanceof Promise) {
      return loaded.then((found) => {
        if (!found) throw new Unauthenticated()
        passage.session = found
      })
    }
    if (!loaded) throw new Unauthenticated()
    passage.session = loaded
  }

  /** Unsafe methods: an allowed Origin and the session's CSRF token. */
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
    const route = (passage.match as NonNullable<Passage['match']>).route
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

  /** An access token with life left, refreshed first if it is within the skew of expiry. */
  const freshToken: Check = (passage) => {
    const current = passage.session as ActiveSession
    if (!tokens.needsRefresh(current)) return
    return tokens.ensureFresh(current).then((fresh) => {
      passage.session = fresh
      passage.request.useSession(fresh)
    })
  }

  /** The rule's roles, judged on the newest tokens' roles. */
  const roles: Check = (passage) => {
    const match = passage.match as Extract<RouteMatch, { kind: 'allowed' }>
    if (!isAllowedForRoles(match.rule, (passage.session as ActiveSession).secrets.roles)) throw new Forbidden()
  }

  /** The rule's step-up: a sign-in with one of its `acr` values, at most `maxAge` seconds ago. */
  const stepUp: Check = (passage) => {
    const { stepUp: required } = (passage.match as Extract<RouteMatch, { kind: 'allowed' }>).rule
    if (!required) return
    const need = stepUpShortfall(required, passage.session as ActiveSession, now())
    if (!need) return
    options.onStepUp?.()
    const referer = passage.request.headers.referer
    throw new StepUpRequired(stepUpLoginUrl(need, stepUpReturnTo(referer, options.publicOrigin)))
  }

  /** Let through: where it goes and with which token; a body is counted as it streams. */
  const admit: Check = (passage) => {
    const { request } = passage
    const match = passage.match as Extract<RouteMatch, { kind: 'allowed' }>
    request.bffForward = {
      path: match.upstreamPath,
      accessToken: (passage.session as ActiveSession).secrets.accessToken,
      upstream: match.route.prefix,
      route: match.route,
      admittedWithSession: true,
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

  // The rule is looked up first only so that a prefix a reload dropped is a 404 with or without a
  // session, like one that never was; a missing rule is still refused after the session check.
  const checks: readonly Check[] = [rule, session, csrf, shape, allowedAtAll, freshToken, roles, stepUp, admit]

  return function gate (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    runChecks(checks, 0, { request, reply, policy: options.policy.current, session: undefined, match: undefined }, done)
  }
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
