/**
 * Bearer-token check for the admin listener, compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export function createAdminTokenCheck (adminToken: string): (authorization: string | undefined) => boolean {
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const expected = createHash('sha256').update(adminToken).digest()
  return (authorization) => {
    const match = /^Bearer (.+)$/.exec(authorization ?? '')
    if (!match?.[1]) return false
    return timingSafeEqual(createHash('sha256').update(match[1]).digest(), expected)
  }
}
