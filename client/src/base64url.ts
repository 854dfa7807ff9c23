/**
 * base64url without padding (RFC 4648 §5), written out rather than built on
 * `btoa`, which older React Native runtimes lack.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

export function base64url (bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0)
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6))
    for (let c = 0; c < chars; c++) text += ALPHABET[(chunk >> (18 - 6 * c)) & 63]
  }
  return text
}

export function base64urlJson (value: unknown): string {
  return base64url(new TextEncoder().encode(JSON.stringify(value)))
}
