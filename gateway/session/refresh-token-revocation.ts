/**
 * Revoking a session's refresh token at the identity provider when the
 * session ends, without letting the IdP hold up what ended it.
 */

/** What of the OIDC client this needs: RFC 7009 revocation. */
export interface TokenRevoker {
  revoke (token: string, hint: 'refresh_token'): Promise<void>
}

/** How long a refresh token revocation may hold up what triggered it (a logout, a revoked session's visit). */
const REVOCATION_WAIT_MS = 2000

/**
 * Revokes a refresh token at the IdP (RFC 7009), waiting at most REVOCATION_WAIT_MS: an
 * unreachable IdP must not hold a logout hostage, and the session is already gone when this runs.
 * Failures are logged, never thrown.
 */
export async function revokeRefreshToken (oidc: TokenRevoker, token: string | undefined, log: { warn: (fields: object, message: string) => void }): Promise<void> {
  if (!token) return
  const revocation = oidc.revoke(token, 'refresh_token').catch((error: unknown) => {
    log.warn({ err: error }, 'refresh token revocation at the identity provider failed')
  })
  await Promise.race([revocation, new Promise(resolve => setTimeout(resolve, REVOCATION_WAIT_MS).unref())])
}
