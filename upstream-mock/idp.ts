/**
 * A real OpenID Connect identity provider (oidc-provider) for tests and the
 * demo, with an in-process control API: counters, role changes, disabled
 * users, a slow token endpoint, grant revocation, IdP-initiated back-channel
 * logout, Shared Signals security events, outages.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { decodeJwt } from 'jose'
import type { Provider as ProviderType } from 'oidc-provider'
import { DEFAULT_MFA_CODE, stepUpPolicy } from './authentication-context.js'
import type { AuthenticationContextOptions } from './authentication-context.js'
import { createInteractionHandler, matchInteractionPath } from './interactions.js'
import { RestartableListener } from './listener.js'
import { urlHost } from './url-host.js'
import { MemoryAdapterStore } from './memory-adapter.js'
import { loadGrantHelpers, loadOidcProvider } from './load-oidc-provider.js'
import { errorPage } from './pages.js'
import { providerConfiguration } from './provider-configuration.js'
import type { IdpClient } from './provider-configuration.js'
import { DEFAULT_API_SCOPES, ResourceServerTable } from './resource-servers.js'
import type { ApiResource } from './resource-servers.js'
import { pushSecurityEvent, signSecurityEvent, subjectIdentifier } from './security-events.js'
import type {
  ComplexSubject, IssSubSubject, PushSecurityEventOptions, SecurityEventDelivery, SecurityEventOptions, SignedSecurityEvent,
} from './security-events.js'
import { SIGNING_ALG, createSigningKey } from './signing-key.js'
import { createTokenCalls, holdRefreshes, resetTokenCalls, tapTokenEndpoint } from './token-endpoint.js'
import type { RefreshHold, RefreshHoldStage, TokenCalls, TokenEndpointTap } from './token-endpoint.js'
import { registerTokenExchange } from './token-exchange.js'
import { UserDirectory } from './users.js'
import type { MockUser } from './users.js'

export type { MockUser } from './users.js'
export type { ClientAuthMethod, IdpClient } from './provider-configuration.js'
export type { ApiResource } from './resource-servers.js'
export type { AuthenticationContextOptions } from './authentication-context.js'
export type { RefreshAnswer, RefreshHold, RefreshHoldStage, TokenCalls } from './token-endpoint.js'
export type {
  ComplexSubject, IssSubSubject, PushSecurityEventOptions, SecurityEventDelivery, SecurityEventOptions, SignedSecurityEvent, SubjectIdentifier,
} from './security-events.js'
export { ACR_MFA, ACR_PASSWORD, DEFAULT_MFA_CODE } from './authentication-context.js'
export { CAEP_EVENTS, RISC_EVENTS } from './security-events.js'
export { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from './token-exchange.js'

export interface IdentityProviderOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string
  /** Default 0 (any free port). */
  port?: number
  /** Public issuer URL when it differs from the bind address (containers); default http://host:port. */
  issuer?: string
  clients?: IdpClient[]
  /** Resource indicator and `aud` of the API's access tokens; default http://127.0.0.1:4001. */
  apiAudience?: string
  /** Seconds; default 300. */
  accessTokenTtl?: number
  /** Seconds; default 86400. */
  refreshTokenTtl?: number
  /** Seconds; default 600. */
  idTokenTtl?: number
  users?: MockUser[]
  /** Shifts iat/exp of issued ID tokens and JWT access tokens; default 0. */
  clockSkewSeconds?: number
  /** Scopes of the default API (`apiAudience`); default `['api']`. */
  apiScopes?: string[]
  /**
   * More APIs (RFC 8707 resource servers), each its own audience and scopes; the default API
   * is always one (listed here too, its entry wins).
   */
  resourceServers?: ApiResource[]
  /**
   * Logins carry an acr: `urn:mock:pwd` for the password form, `urn:mock:mfa` when `acr_values`
   * asks for it and the form also took the one-time code; a session without one of the
   * requested `acr_values` must log in again. Off by default (no acr, as before).
   */
  acr?: boolean | AuthenticationContextOptions
  /** Every DPoP proof at the IdP must carry a nonce it issued (it answers `use_dpop_nonce` first). Off by default. */
  dpopNonce?: boolean
}

export interface BackchannelLogoutDelivery {
  uri: string
  /** HTTP status of the receiver's answer; absent when it could not be reached. */
  status?: number
  error?: string
  sub?: string
  sid?: string
  /** The logout token as sent, so tests can replay or tamper with it. */
  logoutToken: string
  at: number
}

export interface IdentityProvider {
  readonly issuer: string
  readonly port: number
  readonly apiAudience: string
  /** Every API the IdP issues tokens for, the default one first. */
  readonly resourceServers: Array<Required<ApiResource>>
  /** The one-time code of the MFA login; undefined when acr is off. */
  readonly mfaCode: string | undefined
  readonly jwksUri: string
  /** Token endpoint requests by grant_type, counted on arrival, successful or not. */
  readonly tokenCalls: TokenCalls
  resetCounters (): void
  /** Changes a user's roles; the next issued tokens carry them. */
  setRoles (sub: string, roles: string[]): void
  /**
   * Disables a user: they cannot log in (the form answers 403), their IdP sessions end at once
   * (without back-channel logout) and every token request for them (refresh, token exchange)
   * fails with invalid_grant, before any refresh token rotates. Returns how many IdP sessions ended.
   */
  disableUser (sub: string): number
  /** Lets a disabled user log in again; their grants (refresh tokens) work again. */
  enableUser (sub: string): void
  isUserDisabled (sub: string): boolean
  /** The user as a Shared Signals subject: `iss_sub`; with `sid` (the ID token's), `complex` for that IdP session. */
  subjectFor (sub: string, sid?: string): IssSubSubject | ComplexSubject
  /** A Security Event Token signed with the IdP's key (same JWKS as ID tokens), not sent. */
  signSecurityEvent (options: SecurityEventOptions): Promise<SignedSecurityEvent>
  /** Signs a Security Event Token and POSTs it to `receiverUrl` (RFC 8935); resolves with the receiver's answer, rejects if unreachable. */
  pushSecurityEvent (options: PushSecurityEventOptions): Promise<SecurityEventDelivery>
  /** Holds every token endpoint request this long before processing it (0 = off). */
  setTokenEndpointDelay (ms: number): void
  /** Holds refresh_token grants from now on, before or after the IdP decides on them, until released. */
  holdRefreshes (stage: RefreshHoldStage): RefreshHold
  /** Shifts iat/exp of the ID tokens and access tokens issued from now on. */
  setClockSkew (seconds: number): void
  /** Revokes every grant of the user (and so every refresh token), as an IdP admin would; returns how many. */
  revokeGrantsOf (sub: string): number
  /** Ids of the user's live grants. */
  grantsOf (sub: string): string[]
  /**
   * Ends the user's IdP sessions (with `sid`, only the one that gave a client that `sid`) and
   * sends back-channel logout to every client signed in through them.
   */
  logoutUser (sub: string, sid?: string): Promise<BackchannelLogoutDelivery[]>
  readonly backchannelLogoutsSent: BackchannelLogoutDelivery[]
  /** Errors oidc-provider reported as server_error, and handler crashes; empty in a healthy run. */
  readonly serverErrors: unknown[]
  readonly provider: ProviderType
  /** Closes the listener (and open connections) but keeps all state. */
  stop (): Promise<void>
  /** Listens again on the same port. */
  start (): Promise<void>
  close (): Promise<void>
}

function assertIssuer (issuer: string): void {
  const url = new URL(issuer)
  // Interaction and end-session pages are served from the root; a path prefix is not supported.
  if (url.pathname !== '/' || url.search || url.hash || issuer.endsWith('/')) {
    throw new Error(`issuer must be an origin without path or trailing slash, got ${issuer}`)
  }
}

function authenticationContext (option: IdentityProviderOptions['acr']): Required<AuthenticationContextOptions> | undefined {
  if (!option) return undefined
  return { mfaCode: (option === true ? undefined : option.mfaCode) ?? DEFAULT_MFA_CODE }
}

export async function startIdentityProvider (options: IdentityProviderOptions = {}): Promise<IdentityProvider> {
  const { Provider, errors, interactionPolicy } = await loadOidcProvider()
  const grantHelpers = await loadGrantHelpers()
  const host = options.host ?? '127.0.0.1'
  const apiAudience = options.apiAudience ?? 'http://127.0.0.1:4001'
  const accessTokenTtl = options.accessTokenTtl ?? 300
  const defaultApi = { audience: apiAudience, scopes: options.apiScopes ?? [...DEFAULT_API_SCOPES] }
  const resources = new ResourceServerTable(defaultApi, options.resourceServers ?? [], accessTokenTtl)
  const acr = authenticationContext(options.acr)
  const refreshTokenTtl = options.refreshTokenTtl ?? 86_400
  const idTokenTtl = options.idTokenTtl ?? 600
  let clockSkewSeconds = options.clockSkewSeconds ?? 0

  const users = new UserDirectory(options.users)
  const store = new MemoryAdapterStore()
  const tap: TokenEndpointTap = { calls: createTokenCalls(), delayMs: 0 }
  const backchannelLogoutsSent: BackchannelLogoutDelivery[] = []
  const serverErrors: unknown[] = []

  // The issuer contains the port, so bind first and build the provider after.
  let handler: (req: IncomingMessage, res: ServerResponse) => Promise<void> = async (_req, res) => {
    res.writeHead(503)
    res.end()
  }
  const server = createServer((req, res) => {
    handler(req, res).catch(error => {
      serverErrors.push(error)
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' })
        res.end(errorPage({ error: 'server_error' }))
      } else {
        res.destroy()
      }
    })
  })
  const signingKey = await createSigningKey()
  const listener = new RestartableListener(server, host, options.port ?? 0)
  await listener.start()
  try {
    const issuer = options.issuer ?? `http://${urlHost(host)}:${listener.port}`
    assertIssuer(issuer)
    return await buildProvider(issuer)
  } catch (error) {
    await listener.close()
    throw error
  }

  /** Every request oidc-provider makes goes through here; back-channel logout deliveries are logged. */
  async function outgoingFetch (url: string | URL, init: RequestInit): Promise<Response> {
    const logoutToken = init.body instanceof URLSearchParams ? init.body.get('logout_token') : null
    let claims: { sub?: string, sid?: string } = {}
    if (logoutToken) {
      const { sub, sid } = decodeJwt(logoutToken)
      claims = { ...(sub ? { sub } : {}), ...(typeof sid === 'string' ? { sid } : {}) }
    }
    try {
      const response = await globalThis.fetch(url, init)
      if (logoutToken) backchannelLogoutsSent.push({ uri: String(url), status: response.status, ...claims, logoutToken, at: Date.now() })
      return response
    } catch (error) {
      if (logoutToken) backchannelLogoutsSent.push({ uri: String(url), error: (error as Error).message, ...claims, logoutToken, at: Date.now() })
      throw error
    }
  }

  async function buildProvider (issuer: string): Promise<IdentityProvider> {
    const configuration = providerConfiguration({
      clients: options.clients ?? [],
      resources,
      accessTokenTtl,
      refreshTokenTtl,
      idTokenTtl,
      clockSkewSeconds: () => clockSkewSeconds,
      users,
      store,
      jwks: signingKey.privateJwks,
      fetch: outgoingFetch,
      invalidTarget: description => new errors.InvalidTarget(description),
      ...(acr ? { acrPolicy: stepUpPolicy(interactionPolicy) } : {}),
      ...(options.dpopNonce ? { dpopNonceSecret: randomBytes(32) } : {}),
    })
    const provider = new Provider(issuer, configuration)
    // Before the clients are validated: a client may list the grant type.
    registerTokenExchange({ provider, errors, helpers: grantHelpers, resources, users, verificationKeys: signingKey.verificationKeys })
    // oidc-provider validates static clients on first use; fail at start instead.
    for (const { clientId } of options.clients ?? []) {
      await provider.Client.find(clientId).catch((error: Error & { error_description?: string }) => {
        throw new Error(`client ${clientId}: ${error.message}${error.error_description ? ` (${error.error_description})` : ''}`, { cause: error })
      })
    }
    provider.on('server_error', (_ctx, error) => { serverErrors.push(error) })
    // Koa prints unhandled errors unless someone listens.
    provider.on('error', error => { serverErrors.push(error) })

    const providerCallback = provider.callback()
    const handleInteraction = createInteractionHandler(provider, users, acr ?? {})
    const tokenPath = new URL(provider.urlFor('token')).pathname
    const handleToken = tapTokenEndpoint(tap, providerCallback)

    handler = async (req, res) => {
      const { pathname } = new URL(req.url ?? '/', 'http://mock.invalid')
      const interactionUid = matchInteractionPath(pathname)
      if (interactionUid !== undefined) return handleInteraction(req, res, interactionUid)
      if (req.method === 'POST' && pathname === tokenPath) return handleToken(req, res)
      return providerCallback(req, res)
    }

    const signer = { issuer, kid: signingKey.kid, alg: SIGNING_ALG, privateKey: signingKey.privateKey, foreignKey: signingKey.foreignKey }

    return {
      issuer,
      get port () { return listener.port },
      apiAudience,
      resourceServers: resources.list(),
      mfaCode: acr?.mfaCode,
      jwksUri: provider.urlFor('jwks'),
      tokenCalls: tap.calls,
      resetCounters () { resetTokenCalls(tap.calls) },
      setRoles (sub, roles) { users.setRoles(sub, roles) },
      disableUser (sub) {
        users.setDisabled(sub, true)
        // oidc-provider would otherwise resume a session whose account it can no longer find.
        const sessions = store.list('Session').filter(({ payload }) => payload.accountId === sub)
        for (const { id } of sessions) store.delete('Session', id)
        return sessions.length
      },
      enableUser (sub) { users.setDisabled(sub, false) },
      isUserDisabled: sub => users.isDisabled(sub),
      subjectFor: (sub, sid) => subjectIdentifier(issuer, sub, sid),
      signSecurityEvent: eventOptions => signSecurityEvent(signer, eventOptions),
      pushSecurityEvent: eventOptions => pushSecurityEvent(signer, eventOptions),
      setTokenEndpointDelay (ms) { tap.delayMs = ms },
      holdRefreshes: (stage) => holdRefreshes(tap, stage),
      setClockSkew (seconds) { clockSkewSeconds = seconds },
      revokeGrantsOf (sub) {
        const grants = store.list('Grant').filter(({ payload }) => payload.accountId === sub)
        for (const { id } of grants) store.revokeGrant(id)
        return grants.length
      },
      grantsOf (sub) {
        return store.list('Grant').filter(({ payload }) => payload.accountId === sub).map(({ id }) => id)
      },
      async logoutUser (sub, sid) {
        const sent = backchannelLogoutsSent.length
        for (const { id, payload } of store.list('Session')) {
          if (payload.accountId !== sub) continue
          const authorizations = Object.entries(payload.authorizations ?? {})
          if (sid !== undefined && !authorizations.some(([, authorization]) => authorization.sid === sid)) continue
          for (const [clientId, authorization] of authorizations) {
            const client = await provider.Client.find(clientId)
            // Failures are logged in backchannelLogoutsSent; the logout itself goes on.
            if (client?.backchannelLogoutUri) await client.backchannelLogout(sub, authorization.sid).catch(() => {})
          }
          store.delete('Session', id)
        }
        return backchannelLogoutsSent.slice(sent)
      },
      backchannelLogoutsSent,
      serverErrors,
      provider,
      stop: () => listener.stop(),
      start: () => listener.start(),
      close: () => listener.close(),
    }
  }
}
