/**
 * The browser-facing login lifecycle: `/bff/login`, `/bff/callback`,
 * `/bff/user` and `/bff/logout`.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AccountDisabled, IdpUnavailable, InvalidRequest, InvalidReturnTo, InvalidState, LoginFailed, LoginResponseInvalid, Unauthenticated } from '../errors.js'
import { parseReturnTo } from './return-to.js'
import { OidcRejectedError, OidcResponseInvalidError } from './oidc-client.js'
import { bindingFor, LOGIN_STATE_TTL_SECONDS, savePendingLogin, takePendingLogin, type PendingLogin } from './login-state.js'
import { authenticationOf, profileClaims, rolesFrom } from './claims.js'
import { forcingReauthentication, parseLoginOptions } from './login-options.js'
import { SILENT_LOGIN_ERRORS, withLoginError } from './silent-login.js'
import { revokeRefreshToken } from '../session/refresh-token-revocation.js'
import { trustedAcr } from './step-up.js'
import { appRedirect, nativeLoginError, nativeLoginOf } from './native-login.js'
import type { SignedIn } from '../session/active-session.js'

export interface AuthRoutesOptions {
  publicUrl: string
  rolesClaim: string
  sessionCookieName: string
  /** Name of the short-lived cookie that binds a login to the browser that started it. */
  loginCookieName: string
  secureCookies: boolean
  /** NATIVE_REDIRECT_URIS: where a native app's sign-in may end. */
  nativeRedirectUris: readonly string[]
}

const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store')

/** The IdP could not sign the user in without showing something (`prompt=none`): the page decides what next. */
class SilentLoginRefused extends Error {
  constructor (readonly oauthError: string) { super(`silent login refused: ${oauthError}`) }
}

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

  app.get<{ Querystring: Record<string, unknown> }>('/bff/login', {
    config: { crossSiteAllowed: true },
  }, async (request, reply) => {
    // Native apps (RFC 8252, `client=native`): checked before anything goes to the IdP; the
    // callback then hands off to the app's redirect URI instead of returning to a page.
    const native = nativeLoginOf(request.query, options.nativeRedirectUris)
    const returnTo = native ? { ok: true as const, path: '/' } : parseReturnTo(typeof request.query.returnTo === 'string' ? request.query.returnTo : undefined)
    if (!returnTo.ok) throw new InvalidReturnTo()
    const loginOptions = parseLoginOptions(request.query)
    if (!loginOptions.ok) throw new InvalidRequest(loginOptions.message)
    const binding = bindingFor(request.cookies[options.loginCookieName])
    const challenge = oidc.newLoginChallenge()
    // A browser whose session was revoked from elsewhere (lost device, operator, IdP logout) must
    // re-authenticate at the IdP, not slip back in through the IdP's own session cookie.
    const revoked = await app.sessions.revocationOf(request.cookies[options.sessionCookieName])
    const params = revoked ? forcingReauthentication(loginOptions.params) : loginOptions.params
    let url: URL
    try {
      url = await oidc.authorizationUrl(challenge, params)
    } catch (error) {
      // With PAR the IdP judges the gateway's client here already (a wrong key or secret).
      throw refusedLogin(error, request.ip)
    }
    await savePendingLogin(app.loginStates, binding, challenge, returnTo.path, {
      ...(native ? { native } : {}),
      silent: params.prompt === 'none',
    })
    noStore(reply).setCookie(options.loginCookieName, binding, loginCookie)
    return reply.redirect(url.href, 302)
  })

  const refusedAsDisabled = (request: FastifyRequest, sub: string) => {
    audit('login_failed', { reason: 'account_disabled', sub, ip: request.ip })
    return new AccountDisabled()
  }

  /**
   * Who signed in at the IdP, with which tokens; throws when the login failed. Whatever decides
   * whether this identity may have a session at all belongs here: the browser's and the native
   * app's logins both go through it.
   */
  async function signIn (request: FastifyRequest, pending: PendingLogin): Promise<SignedIn> {
    // The route policy's tokens: what the new session starts with, and the key its own token is bound to.
    const binding = await app.loginTokens.prepare()
    let tokens
    try {
      tokens = await oidc.exchangeCode(new URL(request.url, options.publicUrl), pending.challenge, binding.dpop)
    } catch (error) {
      if (error instanceof OidcRejectedError && pending.silent && SILENT_LOGIN_ERRORS.has(error.oauthError)) {
        audit('login_failed', { reason: error.oauthError, ip: request.ip })
        throw new SilentLoginRefused(error.oauthError)
      }
      throw refusedLogin(error, request.ip)
    }
    const claims = tokens.idTokenClaims ?? {}
    const sub = typeof claims.sub === 'string' ? claims.sub : undefined
    if (!sub) throw new LoginFailed()
    if (await app.accounts.isDisabled(sub)) {
      // Nobody will hold the tokens just issued: end their grant at the IdP too.
      await revokeRefreshToken(oidc, tokens.refreshToken, request.log)
      throw refusedAsDisabled(request, sub)
    }
    return {
      identity: { sub, ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}) },
      secrets: {
        accessToken: tokens.accessToken,
        ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
        accessTokenExpiresAt: tokens.accessTokenExpiresAt,
        claims: profileClaims(claims),
        roles: rolesFrom(claims, options.rolesClaim),
        ...authenticationOf(claims),
        ...binding.secrets,
      },
    }
  }

  app.get<{ Querystring: Record<string, string | undefined> }>('/bff/callback', {
    config: { crossSiteAllowed: true },
  }, async (request, reply) => {
    const state = typeof request.query.state === 'string' ? request.query.state : ''
    const pending = await takePendingLogin(app.loginStates, state, request.cookies[options.loginCookieName])
    if (!pending) {
      audit('login_failed', { reason: 'invalid_state', ip: request.ip })
      throw new InvalidState()
    }

    // --- Native app (RFC 8252): no cookie; the system browser goes back to the app with a
    // single-use handoff code, or with the error. The app redeems the code at POST /bff/native/session.
    const { native } = pending
    if (native) {
      let location: string
      try {
        const grant = await signIn(request, pending)
        location = appRedirect(native, { code: await app.handoffCodes.issue(grant, native.codeChallenge) })
      } catch (error) {
        // Logged as the error handler would have: outages and the unforeseen in full.
        if (((error as { statusCode?: number }).statusCode ?? 500) >= 500) request.log.error({ err: error }, 'native sign-in failed')
        location = appRedirect(native, { error: error instanceof SilentLoginRefused ? error.oauthError : nativeLoginError(error) })
      }
      return noStore(reply).redirect(location, 302)
    }
    // --- End of the native app's branch.

    let signedIn: SignedIn
    try {
      signedIn = await signIn(request, pending)
    } catch (error) {
      if (error instanceof SilentLoginRefused) return noStore(reply).redirect(withLoginError(pending.returnTo, error.oauthError), 302)
      throw error
    }
    const { identity, secrets } = signedIn

    // A new id at every login (fixation): whatever session this browser had ends here.
    await app.revocation.revoke({ cookie: request.cookies[options.sessionCookieName], replacedBy: identity, reason: 'user' })

    const { session, cookieValue, maxAgeSeconds } = await app.sessions.create({
      ...identity,
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? '',
    }, secrets)
    // Disabled while this login was finishing: the disable may have looked for the user's sessions
    // before this one was indexed, so it is ended here (revoking its tokens) instead.
    if (await app.accounts.isDisabled(identity.sub)) {
      await app.revocation.revoke({ session, reason: 'account_disabled' })
      throw refusedAsDisabled(request, identity.sub)
    }
    request.useSession(session)
    audit('login', { sub: identity.sub, session: session.handle, ip: request.ip })
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
    let session = await request.loadSession()
    if (!session) throw new Unauthenticated()
    // The same freshness step as a proxied request's, so roles and claims shown are the newest
    // (a refresh an operator asked for included), and a refused grant is 401 session_expired here
    // too. An unreachable IdP is no reason to fail: nothing here needs the access token.
    if (app.tokens.needsRefresh(session)) {
      try {
        session = await app.tokens.ensureFresh(session)
        request.useSession(session)
      } catch (error) {
        if (!(error instanceof IdpUnavailable)) throw error
      }
    }
    const { claims, roles, csrfToken, authTime } = session.secrets
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
      acr: trustedAcr(session) ?? null,
      authTime: authTime !== undefined ? new Date(authTime).toISOString() : null,
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

export default fp(authRoutes, { name: 'bff-auth-routes', dependencies: ['bff-session', 'bff-session-store', 'bff-tokens', 'bff-csrf', 'bff-oidc', 'bff-observability'] })
