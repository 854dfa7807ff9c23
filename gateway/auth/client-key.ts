/**
 * The private key the gateway authenticates itself with at the identity
 * provider when `OIDC_CLIENT_AUTH=private_key_jwt` (RFC 7523): read once at
 * start-up from `OIDC_CLIENT_PRIVATE_KEY`, a JWK as JSON or the path of a file
 * holding a JWK or a PEM (PKCS #8 or a traditional RSA / EC key). Checked here
 * (a private key of a type a JWS can be signed with) so a wrong one stops the
 * start, with a message that never quotes the key.
 */
import { createPrivateKey, type JsonWebKey } from 'node:crypto'
import { readFileSync } from 'node:fs'

export interface ClientPrivateKey {
  /** The private key as a JWK (never logged). */
  jwk: JsonWebKey
  /** The JWS algorithm the client assertion is signed with. */
  alg: string
  /** The key id the IdP knows the public half by, when the JWK had one. */
  kid?: string
}

const ALGORITHMS_BY_KEY: Record<string, readonly string[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC P-256': ['ES256'],
  'EC P-384': ['ES384'],
  'EC P-521': ['ES512'],
  'OKP Ed25519': ['Ed25519', 'EdDSA'],
}

/**
 * The key named by the value of `OIDC_CLIENT_PRIVATE_KEY`.
 * @throws Error whose message says what is wrong, without any of the key.
 */
export function readClientPrivateKey (value: string): ClientPrivateKey {
  const trimmed = value.trim()
  const inline = trimmed.startsWith('{')
  let text = trimmed
  if (!inline) {
    try {
      text = readFileSync(trimmed, 'utf8').trim()
    } catch (error) {
      throw new Error(`cannot read the key file ${trimmed}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`)
    }
  }
  const where = inline ? 'the JWK' : `the key in ${trimmed}`
  const jwk = text.startsWith('{') ? parseJwk(text, where) : pemToJwk(text, where)
  const type = jwk.kty === 'RSA' ? 'RSA' : `${String(jwk.kty)} ${String(jwk.crv)}`
  const algorithms = ALGORITHMS_BY_KEY[type]
  if (algorithms === undefined) throw new Error(`${where} is a ${type} key; use an RSA, EC (P-256, P-384, P-521) or Ed25519 key`)
  const alg = typeof jwk.alg === 'string' ? jwk.alg : algorithms[0] as string
  if (!algorithms.includes(alg)) throw new Error(`${where} says "alg": "${alg}", which a ${type} key cannot sign with`)
  return { jwk, alg, ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) }
}

function parseJwk (text: string, where: string): JsonWebKey {
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    // JSON.parse's message quotes the text around the error: it would quote the key.
    throw new Error(`${where} is not valid JSON`)
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new Error(`${where} is not a JWK (a JSON object)`)
  if (!('d' in jwk)) throw new Error(`${where} is a public key; the gateway needs the private key (with "d")`)
  try {
    createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' })
  } catch {
    throw new Error(`${where} is not a valid private JWK`)
  }
  return jwk as JsonWebKey
}

function pemToJwk (text: string, where: string): JsonWebKey {
  if (!text.startsWith('-----BEGIN')) throw new Error(`${where} is neither a JWK (JSON) nor a PEM key`)
  try {
    return createPrivateKey(text).export({ format: 'jwk' })
  } catch {
    throw new Error(`${where} is not a readable private key (an encrypted PEM or a certificate will not do)`)
  }
}
