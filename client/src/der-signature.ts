/**
 * ECDSA signatures as JWS wants them. Secure Enclave (`SecKeyCreateSignature`
 * with `ecdsaSignatureMessageX962SHA256`) and Android Keystore
 * (`SHA256withECDSA`) return DER: `SEQUENCE { INTEGER r, INTEGER s }`. ES256
 * needs `r || s`, each exactly 32 bytes (RFC 7518 §3.4).
 */
const P256_SIZE = 32

function readInteger (der: Uint8Array, at: number): { value: Uint8Array, next: number } {
  if (der[at] !== 0x02) throw new TypeError('not a DER ECDSA signature: INTEGER expected')
  const length = der[at + 1]!
  const start = at + 2
  if (length === 0 || length > P256_SIZE + 1 || start + length > der.length) throw new TypeError('not a DER ECDSA P-256 signature: bad INTEGER length')
  return { value: der.subarray(start, start + length), next: start + length }
}

function fixedSize (integer: Uint8Array): Uint8Array {
  let start = 0
  while (start < integer.length - 1 && integer[start] === 0) start++
  const digits = integer.subarray(start)
  if (digits.length > P256_SIZE) throw new TypeError('not a DER ECDSA P-256 signature: INTEGER too large')
  const out = new Uint8Array(P256_SIZE)
  out.set(digits, P256_SIZE - digits.length)
  return out
}

/** A DER-encoded ECDSA P-256 signature as the 64-byte `r || s` of ES256. */
export function derToJoseSignature (der: Uint8Array): Uint8Array {
  // P-256 signatures are at most 72 bytes, so the SEQUENCE length always fits in one byte.
  if (der[0] !== 0x30 || der[1] !== der.length - 2) throw new TypeError('not a DER ECDSA signature: SEQUENCE expected')
  const r = readInteger(der, 2)
  const s = readInteger(der, r.next)
  if (s.next !== der.length) throw new TypeError('not a DER ECDSA signature: trailing bytes')
  const signature = new Uint8Array(2 * P256_SIZE)
  signature.set(fixedSize(r.value), 0)
  signature.set(fixedSize(s.value), P256_SIZE)
  return signature
}
