import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { base64url } from '../src/base64url.js'
import { createPkce, randomToken, s256Challenge } from '../src/pkce.js'
import { webPlatformCrypto } from '../src/platform-crypto.js'

const crypto = webPlatformCrypto()

describe('PKCE', () => {
  it('derives the S256 challenge of RFC 7636, appendix B', async () => {
    expect(await s256Challenge(crypto, 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
  })

  it('makes a 43-character unreserved verifier and its challenge, new every time', async () => {
    const first = await createPkce(crypto)
    const second = await createPkce(crypto)
    expect(first.verifier).toMatch(/^[A-Za-z0-9\-._~]{43}$/)
    expect(first.challenge).toBe(createHash('sha256').update(first.verifier).digest('base64url'))
    expect(second.verifier).not.toBe(first.verifier)
  })

  it('draws random tokens from the platform\'s random source', () => {
    const fixed = { ...crypto, getRandomValues: (array: Uint8Array) => array.fill(0xff) }
    expect(randomToken(fixed, 3)).toBe('____')
  })
})

describe('base64url', () => {
  it('matches Node\'s encoder for every length, without padding', () => {
    for (let length = 0; length < 70; length++) {
      const bytes = randomBytes(length)
      expect(base64url(bytes)).toBe(bytes.toString('base64url'))
    }
  })
})
