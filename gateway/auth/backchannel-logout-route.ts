/**
 * `POST /bff/backchannel-logout`: the identity provider ends sessions here
 * (OpenID Connect Back-Channel Logout 1.0). Reached server-to-server, so it is
 * exempt from the browser-facing CSRF checks; the signed logout token is the
 * authentication.
 */
import formBody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { InvalidLogoutToken } from '../errors.js'
import { keyFor } from '../session/keys.js'
import { createLogoutTokenVerifier, LogoutTokenError } from './logout-token.js'

export interface BackchannelLogoutOptions {
  issuer: string
  clientId: string
  /** Seconds of clock difference with the identity provider tolerated in logout token times. */
  clockToleranceSeconds: number
}

export default async function backchannelLogoutRoute (app: FastifyInstance, options: BackchannelLogoutOptions) {
  const { oidc, audit, revocation, replayClaims } = app
  const verify = createLogoutTokenVerifier({
    issuer: options.issuer,
    clientId: options.clientId,
    jwksUri: () => oidc.jwksUri(),
    clockToleranceSeconds: options.clockToleranceSeconds,
    claimJti: (jti, ttlMs) => replayClaims.claimOnce(keyFor.logoutTokenId(options.issuer, jti), ttlMs),
  })
  await app.register(formBody, { bodyLimit: 32 * 1024 })

  app.post<{ Body: { logout_token?: unknown } }>('/bff/backchannel-logout', {
    config: { crossSiteAllowed: true },
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    let claims
    try {
      claims = await verify(typeof request.body?.logout_token === 'string' ? request.body.logout_token : '')
    } catch (error) {
      if (!(error instanceof LogoutTokenError)) throw error
      audit('logout', { reason: 'backchannel_refused', detail: error.reason, ip: request.ip })
      throw new InvalidLogoutToken({ cause: error })
    }

    if (claims.sid) {
      await revocation.revoke({ sid: claims.sid, ...(claims.sub ? { sub: claims.sub } : {}), reason: 'backchannel' })
    } else if (claims.sub) {
      // No sid: the IdP ended every session of this user, so do we, including any an index missed.
      await revocation.revoke({ sub: claims.sub, reason: 'backchannel' })
    }
    return reply.code(200).send()
  })
}
