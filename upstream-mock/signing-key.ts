/**
 * The IdP's one signing key: oidc-provider signs ID tokens and JWT access
 * tokens with it, the Shared Signals transmitter signs security events with
 * it, and token exchange verifies subject tokens against its public half.
 */
import { randomBytes } from 'node:crypto'
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK } from 'jose'
import type { CryptoKey, JSONWebKeySet, JWK, JWTVerifyGetKey } from 'jose'

export const SIGNING_ALG = 'RS256'

export interface SigningKey {
  readonly kid: string
  /** The private JWK set oidc-provider is configured with. */
  readonly privateJwks: { keys: Array<Record<string, unknown>> }
  readonly publicJwks: JSONWebKeySet
  /** Resolves the IdP's public key for jose's jwtVerify. */
  readonly verificationKeys: JWTVerifyGetKey
  privateKey (): Promise<CryptoKey>
  /** A key of nobody's, for forged signatures under this key's `kid`. */
  foreignKey (): Promise<CryptoKey>
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi'])

export async function createSigningKey (): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true })
  const kid = `mock-${randomBytes(6).toString('hex')}`
  const privateJwk: JWK = { ...await exportJWK(privateKey), kid, alg: SIGNING_ALG, use: 'sig' }
  const publicJwk = Object.fromEntries(Object.entries(privateJwk).filter(([member]) => !PRIVATE_MEMBERS.has(member))) as JWK
  const publicJwks = { keys: [publicJwk] }
  let imported: Promise<CryptoKey> | undefined
  let foreign: Promise<CryptoKey> | undefined
  return {
    kid,
    privateJwks: { keys: [{ ...privateJwk }] },
    publicJwks,
    verificationKeys: createLocalJWKSet(publicJwks),
    privateKey () {
      imported ??= importJWK(privateJwk, SIGNING_ALG) as Promise<CryptoKey>
      return imported
    },
    foreignKey () {
      foreign ??= generateKeyPair(SIGNING_ALG).then(pair => pair.privateKey)
      return foreign
    },
  }
}
