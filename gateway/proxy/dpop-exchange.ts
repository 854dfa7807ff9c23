/**
 * Forwarding with a DPoP-bound token (RFC 9449 section 7): every request to
 * the upstream carries a fresh proof (`htm`, `htu` = the upstream URL without
 * query or fragment, `iat`, `jti`, `ath`) signed by the token's key, and the
 * upstream's last `DPoP-Nonce` when it gave one (kept per upstream origin, in
 * process). An answer of 401 with a `use_dpop_nonce` challenge and a new nonce
 * is answered once more with a proof carrying it, so the body is sent whole
 * (the proxy reads it first, within the body limit).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import type { DpopKey } from '../auth/dpop-key.js'
import { exchangeWithUpstream, type AnswerReply, type AnswerSink, type UpstreamRequest } from './upstream-exchange.js'

/** Upstreams' last DPoP nonces, by origin; the policy names the origins, so the map stays small. */
export interface DpopNonces {
  get (origin: string): string | undefined
  remember (origin: string, headers: IncomingHttpHeaders): void
}

export function createDpopNonces (): DpopNonces {
  const nonces = new Map<string, string>()
  return {
    get: (origin) => nonces.get(origin),
    remember (origin, headers) {
      const nonce = headers['dpop-nonce']
      if (typeof nonce === 'string' && nonce !== '') nonces.set(origin, nonce)
    },
  }
}

/** Whether an answer challenges the proof for lack of the server's nonce (RFC 9449 section 9). */
export function isNonceChallenge (statusCode: number, headers: IncomingHttpHeaders): boolean {
  if (statusCode !== 401 || typeof headers['dpop-nonce'] !== 'string') return false
  const challenge = headers['www-authenticate']
  const challenges = Array.isArray(challenge) ? challenge.join(', ') : challenge ?? ''
  return /(^|[\s,])dpop\s/i.test(challenges) && /error\s*=\s*"?use_dpop_nonce"?/i.test(challenges)
}

export interface DpopForward {
  key: DpopKey
  accessToken: string
  nonces: DpopNonces
}

/** `request` (whose body, if any, is whole) sent with a proof, and once more with the nonce an upstream asks for. */
export function exchangeWithProof (dispatcher: Dispatcher, request: UpstreamRequest, dpop: DpopForward, reply: AnswerReply, sink: AnswerSink): void {
  const queryAt = request.path.indexOf('?')
  const htu = request.origin + (queryAt === -1 ? request.path : request.path.slice(0, queryAt))
  const send = (retried: boolean) => {
    const nonce = dpop.nonces.get(request.origin)
    request.headers.dpop = dpop.key.proof({ htm: request.method, htu, accessToken: dpop.accessToken, ...(nonce !== undefined ? { nonce } : {}) })
    exchangeWithUpstream(dispatcher, request, reply, {
      answer (statusCode, headers, body) {
        dpop.nonces.remember(request.origin, headers)
        if (!retried && isNonceChallenge(statusCode, headers)) {
          if (body instanceof Readable) body.destroy()
          send(true)
          return
        }
        sink.answer(statusCode, headers, body)
      },
      fail: (error) => sink.fail(error),
    })
  }
  send(false)
}
