/**
 * OAuth 2.0 Token Exchange (RFC 8693), as a grant type registered on
 * oidc-provider: a client trades a valid access token of a user, issued to
 * that same client, for a JWT access token for another of the IdP's APIs
 * (`resource` or `audience`), with the same `sub` and the scopes asked for,
 * narrowed to those that API defines (all of them when none are asked for).
 * A DPoP proof binds the new token as on any other grant.
 *
 * Errors: an invalid, expired or foreign subject token is `invalid_request`
 * (RFC 8693 section 2.2.2); a subject token of a disabled or unknown user is
 * `invalid_grant`, as a refresh of that user's grant would be; an unknown API
 * is `invalid_target`.
 */
import { jwtVerify } from 'jose'
import type { JWTPayload, JWTVerifyGetKey } from 'jose'
import type { Client, OidcContext, Provider, errors as OidcErrors } from 'oidc-provider'
import type * as GrantHelpers from 'oidc-provider/lib/helpers/grants.js'
import type { ResourceServerTable } from './resource-servers.js'
import type { UserDirectory } from './users.js'

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

const PARAMETERS = [
  'audience',
  'resource',
  'scope',
  'requested_token_type',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
]

export interface TokenExchangeDeps {
  provider: Provider
  errors: typeof OidcErrors
  helpers: typeof GrantHelpers
  resources: ResourceServerTable
  users: UserDirectory
  /** The IdP's own public keys: only its access tokens are exchanged. */
  verificationKeys: JWTVerifyGetKey
}

/** What the handler reads of oidc-provider's request context. */
interface ExchangeContext {
  oidc: {
    params: Record<string, string | string[] | undefined>
    client: Client
  }
  body?: unknown
}

function values (value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

export function registerTokenExchange (deps: TokenExchangeDeps): void {
  const { provider, errors, helpers, resources, users } = deps

  async function verifySubjectToken (token: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, deps.verificationKeys, { issuer: provider.issuer, typ: 'at+jwt' })
      return payload
    } catch {
      throw new errors.InvalidRequest('subject_token is not a valid access token of this issuer (bad signature, expired or malformed)')
    }
  }

  async function exchange (context: OidcContext): Promise<void> {
    const ctx = context as ExchangeContext
    const { params, client } = ctx.oidc
    const dPoP = await helpers.validateDpop(provider, context)

    const subjectToken = single(params.subject_token)
    if (!subjectToken) throw new errors.InvalidRequest('missing required parameter subject_token')
    if (single(params.subject_token_type) !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
    }
    const requestedType = single(params.requested_token_type)
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`only ${ACCESS_TOKEN_TYPE} can be requested`)
    }
    if (params.actor_token !== undefined) throw new errors.InvalidRequest('delegation (actor_token) is not supported')

    const targets = [...new Set([...values(params.resource), ...values(params.audience)])]
    const [target] = targets
    if (target === undefined || targets.length !== 1) {
      throw new errors.InvalidTarget('exactly one resource or audience must be requested')
    }
    const info = resources.info(target)
    if (!info) throw new errors.InvalidTarget(`unknown resource ${target}`)

    const subject = await verifySubjectToken(subjectToken)
    if (subject.client_id !== client.clientId) throw new errors.InvalidRequest('subject_token was issued to another client')
    const user = typeof subject.sub === 'string' ? users.findActive(subject.sub) : undefined
    if (!user) throw new errors.InvalidGrant('the subject_token\'s user is unknown or disabled')

    const resourceServer = new provider.ResourceServer(target, info)
    const asked = params.scope === undefined ? [...resourceServer.scopes] : (single(params.scope) ?? '').split(' ')
    const scope = asked.filter(value => resourceServer.scopes.has(value)).join(' ')

    const token = new provider.AccessToken({ accountId: user.username, client, gty: TOKEN_EXCHANGE_GRANT, ...(scope ? { scope } : {}) })
    token.resourceServer = resourceServer
    if (dPoP) {
      await helpers.checkDpopReplay(provider, context, dPoP, client.clientId)
      token.setThumbprint('jkt', dPoP.thumbprint)
    }
    helpers.checkDpopRequired(provider, context, dPoP)

    ctx.body = helpers.buildTokenResponse(provider, {
      accessToken: await token.save(),
      expiresIn: token.expiration,
      issuedTokenType: ACCESS_TOKEN_TYPE,
      ...(token.scope ? { scope: token.scope } : {}),
      tokenType: token.tokenType,
    })
  }

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, exchange, PARAMETERS, ['resource', 'audience'])
}
