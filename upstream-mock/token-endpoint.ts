/**
 * A tap in front of oidc-provider's token endpoint: counts calls per grant
 * type as they arrive and can hold them back to simulate a slow IdP.
 *
 * The grant type is in the form body, so the body is read here and replayed
 * to oidc-provider on a fresh IncomingMessage. Handing it over as `req.body`
 * instead would make oidc-provider print a warning about upstream body parsers.
 */
import { IncomingMessage } from 'node:http'
import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { BodyTooLargeError, readRequestBody } from './request-body.js'

export interface TokenCalls {
  authorizationCode: number
  refreshToken: number
  /** Any other or missing grant_type. */
  other: number
}

export interface TokenEndpointTap {
  readonly calls: TokenCalls
  delayMs: number
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>

// oidc-provider's own limit for form bodies is 56 KiB.
const BODY_LIMIT = 56 * 1024

export function createTokenCalls (): TokenCalls {
  return { authorizationCode: 0, refreshToken: 0, other: 0 }
}

function count (calls: TokenCalls, grantType: string | null): void {
  if (grantType === 'authorization_code') calls.authorizationCode += 1
  else if (grantType === 'refresh_token') calls.refreshToken += 1
  else calls.other += 1
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
    count(tap.calls, new URLSearchParams(body.toString('utf8')).get('grant_type'))

    if (tap.delayMs > 0) await sleep(tap.delayMs)
    // A caller that gave up while the IdP was "slow" never had its request processed,
    // as if it were lost on the way; otherwise a refresh token would rotate unseen.
    if (clientGone) return
    await forward(replay(req, body), res)
  }
}
