/**
 * The route policy in force, and its reload (`SIGHUP`, `POST /admin/routes/reload`).
 *
 * A reload re-reads the policy file and validates it exactly as at start-up;
 * a valid policy replaces the old one in a single assignment, an invalid one
 * is refused with the start-up lines and the old one stays. Requests in
 * flight are not touched: the gate reads `current` once per request and
 * keeps that object (and the route it matched) to the end, so a request
 * finishes under the policy it started with.
 *
 * The proxy registers one Fastify scope per route prefix of the start-up
 * policy, and Fastify takes no routes once it listens; WebSocket handshakes
 * go through @fastify/http-proxy, whose upstream is fixed when it is
 * registered. So a policy that needs another registration is refused, with
 * a line that says a restart is needed: a prefix the start-up policy did not
 * have, WebSockets on a prefix registered without them, or a WebSocket
 * route's upstream changed. Anything else may change: rules, roles, step-up,
 * timeouts, upstreams of plain routes; a prefix may be dropped (it answers
 * 404 `not_found` from then on) and brought back.
 */
import { ConfigError } from '../config.js'
import type { CompiledRoute, RoutePolicy } from './route-policy.js'
import { loginTokenNeeds } from './token-policy.js'

/** Who asked for a reload: an operator through the admin API, or a signal to the process. */
export type ReloadTrigger = 'admin' | 'signal'

export type ReloadResult = 'applied' | 'unchanged' | 'refused'

export interface ReloadOutcome {
  result: ReloadResult
  by: ReloadTrigger
  /** SHA-256 of the policy in force before the reload. */
  before: string
  /** SHA-256 of the policy in force after it (`before` unless applied). */
  after: string
  /** With `refused`: one line per problem, as at start-up (`ROUTES_FILE: …`). */
  problems: readonly string[]
}

export interface RoutePolicyHolder {
  /** The policy in force. Read it once per request and keep that object for the whole request. */
  readonly current: RoutePolicy
  /** Re-reads the policy; resolves (never rejects) with what happened. Reloads run one at a time. */
  reload (by: ReloadTrigger): Promise<ReloadOutcome>
}

export interface RoutePolicyHolderOptions {
  /** The start-up policy: the one the proxy registered its routes for. */
  initial: RoutePolicy
  /** Reads and validates the policy file (`loadRoutePolicy`); throws a ConfigError when it cannot be used. */
  load: () => Promise<RoutePolicy>
  /** Called once per reload, whatever its result (audit, logs). */
  onReload?: (outcome: ReloadOutcome) => void
}

/** The policy in force, `initial` until a reload applies another. */
export function createRoutePolicyHolder (options: RoutePolicyHolderOptions): RoutePolicyHolder {
  const { initial, load } = options
  let current = initial
  let queue: Promise<unknown> = Promise.resolve()

  async function reloadOnce (by: ReloadTrigger): Promise<ReloadOutcome> {
    const before = current.sha256
    let outcome: ReloadOutcome
    try {
      const candidate = await load()
      const problems = restartNeeded(initial, candidate)
      if (problems.length > 0) {
        outcome = { result: 'refused', by, before, after: before, problems: problems.map(line => `ROUTES_FILE: ${line}`) }
      } else if (candidate.sha256 === before) {
        outcome = { result: 'unchanged', by, before, after: before, problems: [] }
      } else {
        current = candidate
        outcome = { result: 'applied', by, before, after: candidate.sha256, problems: [] }
      }
    } catch (error) {
      outcome = { result: 'refused', by, before, after: before, problems: problemsOf(error) }
    }
    options.onReload?.(outcome)
    return outcome
  }

  return {
    get current () { return current },
    reload (by) {
      // One at a time, so that each outcome's `before` is what the previous one left.
      const next = queue.then(() => reloadOnce(by))
      queue = next
      return next
    },
  }
}

/**
 * What in `candidate` this process cannot serve without a restart, given the routes it
 * registered for `started`; one line per problem, naming its place as the validation does.
 */
export function restartNeeded (started: RoutePolicy, candidate: RoutePolicy): string[] {
  const registered = new Map<string, CompiledRoute>(started.routes.map(route => [route.prefix, route]))
  const problems: string[] = []
  candidate.routes.forEach((route, i) => {
    const atStart = registered.get(route.prefix)
    if (atStart === undefined) {
      problems.push(`routes[${i}].prefix: "${route.prefix}" is not served by this process; adding a prefix needs a restart`)
    } else if (route.websocket && !atStart.websocket) {
      problems.push(`routes[${i}].websocket: "${route.prefix}" was started without WebSockets; turning them on needs a restart`)
    } else if (route.websocket && route.upstream !== atStart.upstream) {
      problems.push(`routes[${i}].upstream: "${route.prefix}" proxies WebSockets to ${atStart.upstream}; changing a WebSocket route's upstream needs a restart`)
    }
  })
  // What every login asks the IdP for (the audiences, a DPoP-bound session token) is fixed at start:
  // sessions signed in under the old list would lack what the new one needs.
  const before = loginTokenNeeds(started.routes)
  const after = loginTokenNeeds(candidate.routes)
  const sameAudiences = before.audiences.length === after.audiences.length && before.audiences.every(audience => after.audiences.includes(audience))
  if (!sameAudiences || before.sessionTokenDpop !== after.sessionTokenDpop || before.anyUserDpop !== after.anyUserDpop) {
    problems.push('routes: the audiences (or the DPoP binding) of the user tokens a login asks for change; that needs a restart')
  }
  return problems
}

function problemsOf (error: unknown): readonly string[] {
  return error instanceof ConfigError ? error.problems : [`ROUTES_FILE: ${(error as Error).message}`]
}
