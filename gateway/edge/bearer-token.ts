/**
 * A bearer-token check, compared in constant time: the admin listener's
 * `ADMIN_TOKEN`, the Shared Signals receiver's `SSF_PUSH_TOKEN`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export function createBearerTokenCheck (expectedToken: string): (authorization: string | undefined) => boolean {
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const expected = createHash('sha256').update(expectedToken).digest()
  return (authorization) => {
    const match = /^Bearer (.+)$/.exec(authorization ?? '')
    if (!match?.[1]) return false
    return timingSafeEqual(createHash('sha256').update(match[1]).digest(), expected)
  }
}
