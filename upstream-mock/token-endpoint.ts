/**
 * A tap in front of oidc-provider's token endpoint: counts calls per grant
 * type as they arrive, can hold them back to simulate a slow IdP, and can hold
 * refresh grants until a test releases them, to stage races with a refresh.
 *
 * The grant type is in the form body, so the body is read here and replayed
 * to oidc-provider on a fresh IncomingMessage. Handing it over as `req.body`
 * instead would make oidc-provider print a warning about upstream body parsers.
 */
import { IncomingMessage } from 'node:http'
import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { BodyTooLargeError, readRequestBody } from './request-body.js'
import { TOKEN_EXCHANGE_GRANT } from './token-exchange.js'

export interface TokenCalls {
  authorizationCode: number
  refreshToken: number
  clientCredentials: number
  tokenExchange: number
  /** Any other or missing grant_type. */
  other: number
}

/**
 * Where a held refresh waits: before oidc-provider decides on it (what happens meanwhile, such as
 * a revocation, decides the answer) or after (the refresh token has rotated; the answer is not sent).
 */
export type RefreshHoldStage = 'before-decision' | 'after-decision'

/** What the IdP answered a held refresh: the refresh token it issued, or its OAuth error. */
export interface RefreshAnswer {
  refreshToken?: string
  error?: string
}

export interface RefreshHold {
  /** Resolves once a refresh is waiting at the hold. */
  readonly reached: Promise<void>
  /** The IdP's answers to the held refreshes, in the order it gave them. */
  readonly answers: readonly RefreshAnswer[]
  /** Lets the held refreshes go on; refreshes that arrive later are not held. */
  release (): void
}

interface ActiveHold {
  readonly stage: RefreshHoldStage
  /** Resolves on release; the first call resolves `reached`. */
  wait (): Promise<void>
  recordAnswer (body: unknown): void
}

export interface TokenEndpointTap {
  readonly calls: TokenCalls
  delayMs: number
  /** Holds refresh_token grants while set. */
  refreshHold?: ActiveHold
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

// oidc-provider's own limit for form bodies is 56 KiB.
const BODY_LIMIT = 56 * 1024

export function createTokenCalls (): TokenCalls {
  return { authorizationCode: 0, refreshToken: 0, clientCredentials: 0, tokenExchange: 0, other: 0 }
}

/** Holds every refresh_token grant that reaches `tap` from now until the release. */
export function holdRefreshes (tap: TokenEndpointTap, stage: RefreshHoldStage): RefreshHold {
  let reach!: () => void
  const reached = new Promise<void>(resolve => { reach = resolve })
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const answers: RefreshAnswer[] = []
  const hold: ActiveHold = {
    stage,
    wait () {
      reach()
      return released
    },
    recordAnswer (body) {
      let answer: { refresh_token?: unknown, error?: unknown }
      try {
        answer = JSON.parse(String(body)) as typeof answer
      } catch {
        answer = { error: 'not_json' }
      }
      answers.push({
        ...(typeof answer.refresh_token === 'string' ? { refreshToken: answer.refresh_token } : {}),
        ...(typeof answer.error === 'string' ? { error: answer.error } : {}),
      })
    },
  }
  tap.refreshHold = hold
  return {
    reached,
    answers,
    release () {
      if (tap.refreshHold === hold) delete tap.refreshHold
      release()
    },
  }
}

/**
 * `res` with its answer recorded and, for a hold after the decision, sent only on release.
 * oidc-provider (Koa) answers with a single `end(body)`, and nothing is sent before it.
 */
function watchedAnswer (res: ServerResponse, hold: ActiveHold): ServerResponse {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse
  res.end = ((...args: unknown[]) => {
    hold.recordAnswer(args[0])
    if (hold.stage === 'before-decision') return end(...args)
    hold.wait().then(() => end(...args))
    return res
  }) as ServerResponse['end']
  return res
}

const COUNTER_OF_GRANT: Record<string, Exclude<keyof TokenCalls, 'other'>> = {
  authorization_code: 'authorizationCode',
  refresh_token: 'refreshToken',
  client_credentials: 'clientCredentials',
  [TOKEN_EXCHANGE_GRANT]: 'tokenExchange',
}

function count (calls: TokenCalls, grantType: string | null): void {
  calls[(grantType !== null && Object.hasOwn(COUNTER_OF_GRANT, grantType) ? COUNTER_OF_GRANT[grantType] : undefined) ?? 'other'] += 1
}

export function resetTokenCalls (calls: TokenCalls): void {
  for (const name of Object.keys(calls) as Array<keyof TokenCalls>) calls[name] = 0
}

function replay (original: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new IncomingMessage(original.socket)
  copy.method = original.method
  copy.url = original.url
  copy.headers = original.headers
  copy.rawHeaders = original.rawHeaders
  copy.httpVersion = original.httpVersion
  copy.httpVersionMajor = original.httpVersionMajor
  copy.httpVersionMinor = original.httpVersionMinor
  copy.push(body)
  copy.push(null)
  copy.complete = true
  return copy
}

export function tapTokenEndpoint (tap: TokenEndpointTap, forward: Handler): Handler {
  return async (req, res) => {
    let clientGone = false
    res.once('close', () => { clientGone = true })

    let body: Buffer
    try {
      body = await readRequestBody(req, BODY_LIMIT)
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error
      res.writeHead(413, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'invalid_request', error_description: error.message }))
      return
    }
    const grantType = new URLSearchParams(body.toString('utf8')).get('grant_type')
    count(tap.calls, grantType)

    if (tap.delayMs > 0) await sleep(tap.delayMs)
    const hold = grantType === 'refresh_token' ? tap.refreshHold : undefined
    if (hold?.stage === 'before-decision') await hold.wait()
    // A caller that gave up while the IdP was "slow" never had its request processed,
    // as if it were lost on the way; otherwise a refresh token would rotate unseen.
    if (clientGone) return
    await forward(replay(req, body), hold ? watchedAnswer(res, hold) : res)
  }
}
