/**
 * Handoff codes between a native sign-in's callback and the app's redemption:
 * single use, 60 s, bound to the app's PKCE challenge, unreadable in the
 * store. On the memory store with a fake clock.
 */
import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { createHandoffCodes, HANDOFF_CODE_TTL_MS } from '../../gateway/session/handoff-codes.js'
import { createMemoryStore } from '../../gateway/session/memory-store.js'
import { createSessionCrypto } from '../../gateway/session/session-crypto.js'
import type { SignedIn } from '../../gateway/session/active-session.js'
import { sealFormat1 } from '../helpers/format-1-seal.js'

const signedIn: SignedIn = {
  identity: { sub: 'alice', sid: 'idp-session-1' },
  secrets: { accessToken: 'access-token-secret', refreshToken: 'refresh-token-secret', accessTokenExpiresAt: 1, claims: { name: 'Alice' }, roles: ['user'] },
}

function pkce () {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

const SECRET = 'handoff-test-secret-0123456789-abcdefgh'

function setup () {
  let clock = Date.UTC(2030, 0, 1)
  const now = () => clock
  const store = createMemoryStore(now)
  const saved: string[] = []
  const codes = createHandoffCodes({
    store: {
      saveHandoff: async (id, value, ttlMs) => { saved.push(id, value); await store.saveHandoff(id, value, ttlMs) },
      takeHandoff: (id) => store.takeHandoff(id),
    },
    crypto: createSessionCrypto([SECRET]),
    epochs: store,
    now,
  })
  return { codes, store, saved, advance: (ms: number) => { clock += ms } }
}

describe('handoff codes', () => {
  it('redeem once, with the verifier of the challenge, for what was signed in', async () => {
    const { codes } = setup()
    const { verifier, challenge } = pkce()
    const code = await codes.issue(signedIn, challenge)
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await codes.redeem(code, verifier)).toEqual(signedIn)
    expect(await codes.redeem(code, verifier)).toBeUndefined()
  })

  it('refuse a wrong verifier, and are spent by it', async () => {
    const { codes } = setup()
    const { verifier, challenge } = pkce()
    const code = await codes.issue(signedIn, challenge)
    expect(await codes.redeem(code, pkce().verifier)).toBeUndefined()
    expect(await codes.redeem(code, verifier)).toBeUndefined()
  })

  it('refuse the challenge itself or a malformed verifier in place of the verifier', async () => {
    const { codes } = setup()
    const { challenge } = pkce()
    expect(await codes.redeem(await codes.issue(signedIn, challenge), challenge)).toBeUndefined()
    expect(await codes.redeem(await codes.issue(signedIn, challenge), 'short')).toBeUndefined()
  })

  it(`live ${HANDOFF_CODE_TTL_MS / 1000} s`, async () => {
    const { codes, advance } = setup()
    const { verifier, challenge } = pkce()
    const early = await codes.issue(signedIn, challenge)
    const late = await codes.issue(signedIn, challenge)
    advance(HANDOFF_CODE_TTL_MS - 1)
    expect(await codes.redeem(early, verifier)).toEqual(signedIn)
    advance(1)
    expect(await codes.redeem(late, verifier)).toBeUndefined()
  })

  it('refuse unknown and malformed codes', async () => {
    const { codes } = setup()
    const { verifier } = pkce()
    expect(await codes.redeem(randomBytes(32).toString('base64url'), verifier)).toBeUndefined()
    expect(await codes.redeem('', verifier)).toBeUndefined()
    expect(await codes.redeem('x'.repeat(300), verifier)).toBeUndefined()
  })

  it('are void once the user was signed out everywhere after the sign-in', async () => {
    const { codes, store } = setup()
    const { verifier, challenge } = pkce()
    const code = await codes.issue(signedIn, challenge)
    await store.bumpUserEpoch('alice', 60_000)
    expect(await codes.redeem(code, verifier)).toBeUndefined()
  })

  it('leave neither the code nor a token readable in the store', async () => {
    const { codes, saved } = setup()
    const code = await codes.issue(signedIn, pkce().challenge)
    const stored = saved.join('\n')
    for (const secret of [code, 'access-token-secret', 'refresh-token-secret', 'Alice']) expect(stored).not.toContain(secret)
  })

  it('redeem a code the version before issued (its grant sealed in format 1) during an upgrade', async () => {
    const { codes, store } = setup()
    const { verifier, challenge } = pkce()
    const code = randomBytes(32).toString('base64url')
    const id = createHash('sha256').update(code).digest('base64url')
    const sealed = sealFormat1(SECRET, JSON.stringify(signedIn), Buffer.from(code, 'base64url'), id)
    await store.saveHandoff(id, JSON.stringify({ codeChallenge: challenge, epoch: 0, expiresAt: Date.UTC(2030, 0, 1) + 60_000, sealed }), 60_000)
    expect(await codes.redeem(code, verifier)).toEqual(signedIn)
  })
})
