/**
 * The browser-facing login lifecycle: `/bff/login`, `/bff/callback`,
 * `/bff/user` and `/bff/logout`.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { InvalidReturnTo, InvalidState, LoginFailed, LoginResponseInvalid, Unauthenticated } from '../errors.js'
import { parseReturnTo } from './return-to.js'
import { OidcRejectedError, OidcResponseInvalidError } from './oidc-client.js'
import { bindingFor, LOGIN_STATE_TTL_SECONDS, savePendingLogin, takePendingLogin } from './login-state.js'
import { profileClaims, rolesFrom } from './claims.js'

export interface AuthRoutesOptions {
  publicUrl: string
  rolesClaim: string
  sessionCookieName: string
  /** Name of the short-lived cookie that binds a login to the browser that started it. */
  loginCookieName: string
  secureCookies: boolean
}

const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store')

async function authRoutes (app: FastifyInstance, options: AuthRoutesOptions) {
  const { oidc, audit } = app
  const loginCookie = {
    httpOnly: true,
    secure: options.secureCookies,
    // Lax, not Strict: the IdP's redirect back to /bff/callback is a cross-site top-level navigation.
    sameSite: 'lax' as const,
    path: '/',
    maxAge: LOGIN_STATE_TTL_SECONDS,
  }

  app.get<{ Querystring: { returnTo?: string } }>('/bff/login', {
    config: { crossSiteAllowed: true },
  }, async (request, reply) => {
    const returnTo = parseReturnTo(typeof request.query.returnTo === 'string' ? request.query.returnTo : undefined)
    if (!returnTo.ok) throw new InvalidReturnTo()
    const binding = bindingFor(request.cookies[options.loginCookieName])
    const challenge = oidc.newLoginChallenge()
    // A browser whose session was revoked from elsewhere (lost device, operator, IdP logout) must
    // re-authenticate at the IdP, not slip back in through the IdP's own session cookie.
    const revoked = await app.sessions.revocationOf(request.cookies[options.sessionCookieName])
    let url: URL
    try {
      url = await oidc.authorizationUrl(challenge, revoked ? { prompt: 'login' } : {})
    } catch (error) {
      // With PAR the IdP judges the gateway's client here already (a wrong key or secret).
      throw refusedLogin(error, request.ip)
    }
    await savePendingLogin(app.loginStates, binding, challenge, returnTo.path)
    noStore(reply).setCookie(options.loginCookieName, binding, loginCookie)
    return reply.redirect(url.href, 302)
  })

  app.get<{ Querystring: Record<string, string | undefined> }>('/bff/callback', {
    config: { crossSiteAllowed: true },
  }, async (request, reply) => {
    const state = typeof request.query.state === 'string' ? request.query.state : ''
    const pending = await takePendingLogin(app.loginStates, state, request.cookies[options.loginCookieName])
    if (!pending) {
      audit('login_failed', { reason: 'invalid_state', ip: request.ip })
      throw new InvalidState()
    }
    // The route policy's tokens: what the new session starts with, and the key its own token is bound to.
    const binding = await app.loginTokens.prepare()
    let tokens
    try {
      tokens = await oidc.exchangeCode(new URL(request.url, options.publicUrl), pending.challenge, binding.dpop)
    } catch (error) {
      throw refusedLogin(error, request.ip)
    }
    const claims = tokens.idTokenClaims ?? {}
    const sub = typeof claims.sub === 'string' ? claims.sub : undefined
    if (!sub) throw new LoginFailed()

    // A new id at every login (fixation): whatever session this browser had ends here.
    await app.revocation.revoke({ cookie: request.cookies[options.sessionCookieName], reason: 'user' })

    const { session, cookieValue, maxAgeSeconds } = await app.sessions.create({
      sub,
      ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}),
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? '',
    }, {
      accessToken: tokens.accessToken,
      ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
      ...(tokens.idToken ? { idToken: tokens.idToken } : {}),
      accessTokenExpiresAt: tokens.accessTokenExpiresAt,
      claims: profileClaims(claims),
      roles: rolesFrom(claims, options.rolesClaim),
      ...binding.secrets,
    })
    request.useSession(session)
    audit('login', { sub, session: session.handle, ip: request.ip })
    noStore(reply).setSessionCookie(cookieValue, maxAgeSeconds)
    return reply.redirect(pending.returnTo, 302)
  })

  /** The error a login answers when the IdP refused it or its answer failed the checks, audited. */
  function refusedLogin (error: unknown, ip: string): unknown {
    if (error instanceof OidcRejectedError) {
      // An unregistered code is the caller's own text: the line keeps it (bounded), the reason does not.
      const reported = error.oauthError === 'other' ? { reportedError: error.reportedError } : {}
      audit('login_failed', { reason: error.oauthError, ...reported, ip })
      return new LoginFailed({ cause: error })
    }
    if (error instanceof OidcResponseInvalidError) {
      audit('login_failed', { reason: 'invalid_response', check: error.check, ip })
      return new LoginResponseInvalid({ cause: error })
    }
    // IdpUnavailable: an outage (502), not a failed login.
    return error
  }

  app.get('/bff/user', async (request, reply) => {
    const session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    const { claims, roles, csrfToken } = session.secrets
    noStore(reply)
    return {
      sub: session.meta.sub,
      name: typeof claims.name === 'string' ? claims.name : null,
      email: typeof claims.email === 'string' ? claims.email : null,
      roles,
      claims,
      csrfToken,
      expiresAt: new Date(session.meta.absoluteExpiresAt).toISOString(),
      idleExpiresAt: new Date(session.idleExpiresAt).toISOString(),
    }
  })

  app.post('/bff/logout', { config: { csrf: true } }, async (request, reply) => {
    const session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    await app.revocation.revoke({ session, reason: 'logout' })
    request.useSession(undefined)
    let logoutUrl: string | null = null
    try {
      // No id_token_hint: the URL goes to the browser, and no token ever does.
      logoutUrl = (await oidc.endSessionUrl(undefined, `${options.publicUrl}/`)) ?? null
    } catch (error) {
      request.log.warn({ err: error }, 'end-session URL unavailable; local logout only')
    }
    noStore(reply).clearSessionCookie()
    return { logoutUrl }
  })
}

export default fp(authRoutes, { name: 'bff-auth-routes', dependencies: ['bff-session', 'bff-session-store', 'bff-csrf', 'bff-oidc', 'bff-tokens', 'bff-observability'] })
