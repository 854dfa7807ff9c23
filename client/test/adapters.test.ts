import { createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createMemorySecureStore, createWebCryptoKeyStore, derToJoseSignature } from '../src/native.js'

describe('createWebCryptoKeyStore()', () => {
  it('holds a P-256 private key that cannot be exported', async () => {
    const keyStore = createWebCryptoKeyStore()
    const { privateKey, publicKey } = await keyStore.keyPair()
    expect(privateKey.extractable).toBe(false)
    expect(privateKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' })
    await expect(crypto.subtle.exportKey('jwk', privateKey)).rejects.toThrow()
    await expect(crypto.subtle.exportKey('pkcs8', privateKey)).rejects.toThrow()
    expect(publicKey.extractable).toBe(true)
  })

  it('gives the public key only, as a JWK', async () => {
    const jwk = await createWebCryptoKeyStore().publicJwk()
    expect(Object.keys(jwk).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256' })
  })

  it('signs ES256 as r || s, verifiable with the public key', async () => {
    const keyStore = createWebCryptoKeyStore()
    const data = new TextEncoder().encode('header.payload')
    const signature = await keyStore.sign(data)
    expect(signature).toHaveLength(64)
    const publicKey = createPublicKey({ key: { ...await keyStore.publicJwk() }, format: 'jwk' })
    expect(nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true)
  })

  it('keeps one key, and takes back a pair the app kept', async () => {
    const first = createWebCryptoKeyStore()
    const kept = await first.keyPair()
    expect(await first.publicJwk()).toEqual(await first.publicJwk())
    const restored = createWebCryptoKeyStore({ keyPair: kept })
    expect(await restored.publicJwk()).toEqual(await first.publicJwk())
  })
})

describe('createMemorySecureStore()', () => {
  it('gets what was set, and nothing after a delete', async () => {
    const store = createMemorySecureStore()
    expect(await store.get('bff.session')).toBeNull()
    await store.set('bff.session', 'value')
    expect(await store.get('bff.session')).toBe('value')
    await store.delete('bff.session')
    expect(await store.get('bff.session')).toBeNull()
  })
})

describe('derToJoseSignature()', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  it('turns the DER signatures of native key stores into ES256 r || s', () => {
    // Enough signatures that INTEGERs with a sign byte (33 bytes) and without (32) both occur.
    const lengths = new Set<number>()
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`message ${i}`)
      const der = nodeSign('sha256', data, { key: privateKey, dsaEncoding: 'der' })
      lengths.add(der.length)
      const jose = derToJoseSignature(der)
      expect(jose).toHaveLength(64)
      expect(nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true)
    }
    expect(lengths.size).toBeGreaterThan(1)
  })

  it('pads a short INTEGER and drops a sign byte', () => {
    const r = Uint8Array.from({ length: 31 }, (_, i) => i + 1) // r < 2^248: DER drops the leading zero byte
    const s = Uint8Array.from([0x00, ...Array.from({ length: 32 }, () => 0xff)]) // high bit set: DER adds a sign byte
    const der = Uint8Array.from([0x30, 4 + r.length + s.length, 0x02, r.length, ...r, 0x02, s.length, ...s])
    expect([...derToJoseSignature(der)]).toEqual([0, ...r, ...Array(32).fill(0xff)])
  })

  it('refuses what is not a DER ECDSA P-256 signature', () => {
    const der = nodeSign('sha256', Buffer.from('x'), { key: privateKey, dsaEncoding: 'der' })
    for (const bad of [new Uint8Array(64), der.subarray(0, der.length - 1), Buffer.concat([der, Buffer.from([0])]), Uint8Array.of(0x30, 0x00)]) {
      expect(() => derToJoseSignature(bad)).toThrow(TypeError)
    }
  })
})
