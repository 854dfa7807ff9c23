/**
 * What the gateway takes from ID-token (or userinfo) claims: the user's roles
 * for the route policy, and the profile claims `/bff/user` shows the SPA.
 */

// Protocol claims say nothing about the user and some (nonce, sid, hashes) are
// better kept from page scripts.
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'sid', 'azp', 'auth_time', 'acr', 'amr'])

/**
 * Reads roles from `claim`, which may be a dotted path into nested objects
 * (`realm_access.roles` for Keycloak). Accepts an array of strings or a
 * space-separated string; anything else is no roles.
 */
export function rolesFrom (claims: Record<string, unknown>, claim: string): string[] {
  let value: unknown = claim in claims ? claims[claim] : claims
  if (!(claim in claims)) {
    for (const part of claim.split('.')) {
      value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined
    }
  }
  if (Array.isArray(value)) return value.filter((r): r is string => typeof r === 'string')
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean)
  return []
}

export function profileClaims (claims: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)))
}

/** How the user authenticated, as the login's ID token says: kept with the tokens for step-up rules, never among the profile claims. */
export function authenticationOf (claims: Record<string, unknown>): { acr?: string, authTime?: number } {
  const { acr, auth_time: authTime } = claims
  return {
    ...(typeof acr === 'string' && acr !== '' ? { acr } : {}),
    ...(typeof authTime === 'number' && Number.isFinite(authTime) && authTime > 0 ? { authTime: Math.round(authTime * 1000) } : {}),
  }
}
