/**
 * Handoff codes: how a native sign-in crosses from the system browser to the
 * app (RFC 8252). The callback issues a single-use code that the browser
 * carries to the app's redirect URI; the app redeems it, with the PKCE
 * verifier of the `code_challenge` it started with, for a session of its own.
 *
 * What waits in the store is sealed under a key derived from the code itself
 * (and the server secret), and filed under the code's hash: a store dump holds
 * neither a usable code nor readable tokens. An app that intercepts another's
 * redirect (any app may claim a custom scheme) gets a code it cannot redeem
 * without the verifier, which never left the app that started the login.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { SignedIn } from './active-session.js'
import type { SessionCrypto } from './session-crypto.js'
import type { Handoffs, UserSessionIndex } from './store.js'

/** The contract's lifetime of a handoff code. */
export const HANDOFF_CODE_TTL_MS = 60_000

const CODE = /^[A-Za-z0-9_-]{43}$/
// RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/

interface StoredHandoff {
  codeChallenge: string
  /** The user's revocation epoch at sign-in: "sign out everywhere" also voids codes in flight. */
  epoch: number
  expiresAt: number
  /** The grant, sealed under the code (base64url of the sealed bytes). */
  sealed: string
}

export interface HandoffCodes {
  /** A fresh code for `grant`, redeemable once within its lifetime with the verifier of `codeChallenge` (S256). */
  issue (grant: SignedIn, codeChallenge: string): Promise<string>
  /**
   * The grant, once. Undefined for an unknown, used or expired code, a verifier that does not
   * match (the code is spent either way: no second guess), or a user signed out everywhere since.
   */
  redeem (code: string, codeVerifier: string): Promise<SignedIn | undefined>
}

export interface HandoffCodesOptions {
  store: Handoffs
  crypto: SessionCrypto
  epochs: Pick<UserSessionIndex, 'userEpoch'>
  ttlMs?: number
  now?: () => number
}

// Also RFC 7636's S256: BASE64URL(SHA256(ASCII(code_verifier))).
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url')

function sameText (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

export function createHandoffCodes (options: HandoffCodesOptions): HandoffCodes {
  const { store, crypto, epochs } = options
  const ttlMs = options.ttlMs ?? HANDOFF_CODE_TTL_MS
  const now = options.now ?? Date.now

  return {
    async issue (grant, codeChallenge) {
      const code = randomBytes(32).toString('base64url')
      const id = sha256(code)
      const stored: StoredHandoff = {
        codeChallenge,
        epoch: await epochs.userEpoch(grant.identity.sub),
        expiresAt: now() + ttlMs,
        sealed: crypto.seal(JSON.stringify(grant), Buffer.from(code, 'base64url'), id).toString('base64url'),
      }
      await store.saveHandoff(id, JSON.stringify(stored), ttlMs)
      return code
    },
    async redeem (code, codeVerifier) {
      if (!CODE.test(code)) return undefined
      const id = sha256(code)
      const raw = await store.takeHandoff(id)
      if (raw === undefined) return undefined
      const stored = JSON.parse(raw) as StoredHandoff
      // The store's TTL is the backstop; the lifetime is judged here, on the gateway's clock.
      if (stored.expiresAt <= now()) return undefined
      if (!CODE_VERIFIER.test(codeVerifier) || !sameText(sha256(codeVerifier), stored.codeChallenge)) return undefined
      const grant = JSON.parse(crypto.unseal(stored.sealed, Buffer.from(code, 'base64url'), id)) as SignedIn
      if (await epochs.userEpoch(grant.identity.sub) > stored.epoch) return undefined
      return grant
    },
  }
}
