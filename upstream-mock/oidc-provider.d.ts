/**
 * oidc-provider ships no type declarations. This is the subset the mock uses,
 * written from the library's source (lib/provider.js, lib/helpers/defaults.js,
 * lib/models/*). Kept loose where the mock only passes values through.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** Whatever oidc-provider stores through an adapter: plain JSON objects. */
  export interface AdapterPayload {
    [key: string]: unknown
    accountId?: string
    clientId?: string
    grantId?: string
    uid?: string
    userCode?: string
    consumed?: number
    jti?: string
    exp?: number
    authorizations?: Record<string, { sid?: string, grantId?: string }>
  }

  export interface Adapter {
    upsert (id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>
    find (id: string): Promise<AdapterPayload | undefined>
    findByUserCode (userCode: string): Promise<AdapterPayload | undefined>
    findByUid (uid: string): Promise<AdapterPayload | undefined>
    consume (id: string): Promise<void>
    destroy (id: string): Promise<void>
    revokeByGrantId (grantId: string): Promise<void>
  }

  export interface AccountClaims {
    [claim: string]: unknown
    sub: string
  }

  export interface Account {
    accountId: string
    claims (use: string, scope: string, claims: unknown, rejected: string[]): AccountClaims | Promise<AccountClaims>
  }

  /** The request context oidc-provider hands to configuration callbacks; the mock never reads it. */
  export type OidcContext = unknown

  /** The token models as configuration callbacks see them (AccessToken, RefreshToken, ...). */
  export interface TokenModel {
    accountId?: string
    clientId?: string
    grantId?: string
    resourceServer?: { audience?: string, accessTokenTTL?: number }
  }

  export interface JwtStructure {
    header?: Record<string, unknown>
    payload: Record<string, unknown>
  }

  export interface ResourceServerInfo {
    audience: string
    scope: string
    accessTokenFormat?: 'opaque' | 'jwt'
    accessTokenTTL?: number
  }

  export interface ClientMetadata {
    client_id: string
    client_secret?: string
    redirect_uris: string[]
    post_logout_redirect_uris?: string[]
    grant_types?: string[]
    response_types?: string[]
    token_endpoint_auth_method?: string
    backchannel_logout_uri?: string
    backchannel_logout_session_required?: boolean
    client_name?: string
    jwks?: JSONWebKeySet
    require_auth_time?: boolean
    require_pushed_authorization_requests?: boolean
    dpop_bound_access_tokens?: boolean
  }

  export interface JSONWebKeySet {
    keys: Array<Record<string, unknown>>
  }

  type TtlFunction = (ctx: OidcContext, token: TokenModel, client: unknown) => number
  type PageRenderer = (ctx: { body?: unknown, type?: string }, ...rest: never[]) => Promise<void> | void

  export interface Configuration {
    acrValues?: string[]
    adapter?: (modelName: string) => Adapter
    clients?: ClientMetadata[]
    jwks?: JSONWebKeySet
    cookies?: { keys?: string[], names?: Record<string, string> }
    claims?: Record<string, string[] | null>
    scopes?: string[]
    responseTypes?: string[]
    conformIdTokenClaims?: boolean
    clientBasedCORS?: (ctx: OidcContext, origin: string, client: unknown) => boolean
    findAccount?: (ctx: OidcContext, sub: string, token?: unknown) => Promise<Account | undefined> | Account | undefined
    extraTokenClaims?: (ctx: OidcContext, token: TokenModel) => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined
    issueRefreshToken?: (ctx: OidcContext, client: { grantTypeAllowed (type: string): boolean }, source: unknown) => Promise<boolean> | boolean
    expiresWithSession?: (ctx: OidcContext, source: unknown) => Promise<boolean> | boolean
    rotateRefreshToken?: boolean | ((ctx: OidcContext) => Promise<boolean> | boolean)
    pkce?: { required?: (ctx: OidcContext, client: unknown) => boolean }
    interactions?: { policy?: InteractionPolicy, url?: (ctx: OidcContext, interaction: Interaction) => Promise<string> | string }
    formats?: { customizers?: { jwt?: (ctx: OidcContext, token: TokenModel, jwt: JwtStructure) => Promise<void> | void } }
    fetch?: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => Promise<Response>
    renderError?: (ctx: { body?: unknown, type?: string, status?: number }, out: Record<string, string>, error: Error) => Promise<void> | void
    ttl?: Partial<Record<'AccessToken' | 'AuthorizationCode' | 'ClientCredentials' | 'DeviceCode' | 'BackchannelAuthenticationRequest'
      | 'Grant' | 'IdToken' | 'Interaction' | 'PreAuthorizedCode' | 'RefreshToken' | 'Session', number | TtlFunction>>
    features?: {
      devInteractions?: { enabled: boolean }
      clientCredentials?: { enabled: boolean }
      dPoP?: { enabled: boolean, nonceSecret?: Buffer, requireNonce?: (ctx: OidcContext) => boolean, allowReplay?: boolean }
      pushedAuthorizationRequests?: { enabled: boolean, requirePushedAuthorizationRequests?: boolean }
      revocation?: { enabled: boolean, allowedPolicy?: (ctx: OidcContext, client: { clientId: string }, token: { clientId?: string }) => Promise<boolean> | boolean }
      introspection?: { enabled: boolean, allowedPolicy?: (ctx: OidcContext, client: { clientId: string }, token: { clientId?: string }) => Promise<boolean> | boolean }
      backchannelLogout?: { enabled: boolean }
      rpInitiatedLogout?: {
        enabled: boolean
        logoutSource?: (ctx: { body?: unknown }, form: string) => Promise<void> | void
        postLogoutSuccessSource?: PageRenderer
      }
      userinfo?: { enabled: boolean }
      resourceIndicators?: {
        enabled: boolean
        defaultResource?: (ctx: OidcContext, client: unknown, oneOf?: string[]) => Promise<string | string[] | undefined> | string | string[] | undefined
        useGrantedResource?: (ctx: OidcContext, model: unknown) => Promise<boolean> | boolean
        getResourceServerInfo?: (ctx: OidcContext, resourceIndicator: string, client: unknown) => Promise<ResourceServerInfo> | ResourceServerInfo
      }
    }
  }

  export interface Interaction {
    uid: string
    returnTo: string
    prompt: { name: string, reasons: string[], details: Record<string, unknown> }
    params: Record<string, unknown>
    session?: { accountId?: string, uid?: string }
    grantId?: string
    lastSubmission?: Record<string, unknown>
  }

  export interface InteractionResults {
    login?: { accountId: string, acr?: string, amr?: string[], remember?: boolean, ts?: number }
    consent?: { grantId: string }
    error?: string
    error_description?: string
  }

  export class Grant {
    constructor (properties: { accountId: string, clientId: string })
    static find (id: string): Promise<Grant | undefined>
    accountId: string
    clientId: string
    addOIDCScope (scope: string): void
    addOIDCClaims (claims: string[]): void
    addResourceScope (resource: string, scope: string): void
    save (): Promise<string>
  }

  export class Check {
    constructor (reason: string, description: string, error: string, check: (ctx: OidcContext) => boolean | Promise<boolean>)
    static readonly REQUEST_PROMPT: true
    static readonly NO_NEED_TO_PROMPT: false
  }

  export interface Prompt {
    name: string
    checks: Check[] & { add (check: Check, index?: number): void }
  }

  export type InteractionPolicy = Prompt[] & { get (name: string): Prompt | undefined }

  export const interactionPolicy: {
    Check: typeof Check
    base (): InteractionPolicy
  }

  /** oidc-provider's view of the RFC 8707 resource server a token is for. */
  export class ResourceServer {
    constructor (identifier: string, info: ResourceServerInfo)
    readonly scopes: Set<string>
  }

  /** An access token being issued; JWT-format ones are not stored. */
  export class AccessToken {
    constructor (properties: { accountId: string, client: Client, gty?: string, scope?: string })
    resourceServer?: ResourceServer
    scope?: string
    readonly expiration: number
    readonly tokenType: 'Bearer' | 'DPoP'
    setThumbprint (kind: 'jkt', thumbprint: string): void
    save (): Promise<string>
  }

  export class Client {
    static find (id: string): Promise<Client | undefined>
    clientId: string
    backchannelLogoutUri?: string
    backchannelLogout (sub: string, sid: string | undefined): Promise<void>
  }

  export class Provider {
    constructor (issuer: string, configuration?: Configuration)
    readonly issuer: string
    readonly Grant: typeof Grant
    readonly Client: typeof Client
    readonly AccessToken: typeof AccessToken
    readonly ResourceServer: typeof ResourceServer
    /** `handler` gets oidc-provider's request context, with the client already authenticated. */
    registerGrantType (grantType: string, handler: (ctx: OidcContext) => Promise<void>, parameters: string[], allowedDuplicateParameters?: string[]): void
    proxy: boolean
    callback (): (req: IncomingMessage, res: ServerResponse) => Promise<void>
    interactionDetails (req: IncomingMessage, res: ServerResponse): Promise<Interaction>
    interactionFinished (req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: { mergeWithLastSubmission?: boolean }): Promise<void>
    urlFor (route: string, options?: Record<string, string>): string
    on (event: string, listener: (...args: unknown[]) => void): this
  }

  export const errors: {
    InvalidGrant: new (description?: string) => Error
    InvalidRequest: new (description?: string) => Error
    InvalidTarget: new (description?: string) => Error
  }

  export default Provider
}

/**
 * The grant handlers' shared helpers (lib/helpers/grants.js): oidc-provider's own DPoP
 * proof validation and token response, for a grant type registered with registerGrantType.
 */
declare module 'oidc-provider/lib/helpers/grants.js' {
  import type { OidcContext, Provider } from 'oidc-provider'

  export interface DpopProofResult {
    thumbprint: string
    jti: string
    iat: number
  }

  export function validateDpop (provider: Provider, ctx: OidcContext): Promise<DpopProofResult | undefined>
  export function checkDpopReplay (provider: Provider, ctx: OidcContext, dPoP: DpopProofResult | undefined, clientId: string): Promise<void>
  export function checkDpopRequired (provider: Provider, ctx: OidcContext, dPoP: DpopProofResult | undefined): void
  export function buildTokenResponse (provider: Provider, response: {
    accessToken: string
    expiresIn: number
    issuedTokenType?: string
    scope?: string
    tokenType: string
  }): Record<string, unknown>
}
