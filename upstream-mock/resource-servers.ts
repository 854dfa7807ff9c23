/**
 * The APIs the IdP issues access tokens for (RFC 8707 resource servers): each
 * is its own audience with its own scopes. The default API is always there,
 * so a login that names no `resource` gets a token for it, as before.
 */
import type { ResourceServerInfo } from 'oidc-provider'

export interface ApiResource {
  /** Resource indicator and `aud` of the API's access tokens: an absolute URI. */
  audience: string
  /** Scopes the API defines; its tokens carry only these (and only those asked for and granted). */
  scopes?: string[]
  /** Seconds; default the IdP's access token lifetime. */
  accessTokenTtl?: number
}

/** The default API's scopes unless configured. */
export const DEFAULT_API_SCOPES: readonly string[] = ['api']

export class ResourceServerTable {
  readonly defaultAudience: string
  readonly #resources = new Map<string, Required<ApiResource>>()

  constructor (defaultApi: ApiResource, resources: readonly ApiResource[], accessTokenTtl: number) {
    this.defaultAudience = defaultApi.audience
    for (const resource of [defaultApi, ...resources]) {
      if (!URL.canParse(resource.audience)) throw new Error(`resource server audience must be an absolute URI, got ${resource.audience}`)
      this.#resources.set(resource.audience, {
        audience: resource.audience,
        scopes: [...resource.scopes ?? []],
        accessTokenTtl: resource.accessTokenTtl ?? accessTokenTtl,
      })
    }
  }

  /** What oidc-provider needs to issue a JWT access token for `indicator`; undefined when it is no API of ours. */
  info (indicator: string): ResourceServerInfo | undefined {
    const resource = this.#resources.get(indicator)
    if (!resource) return undefined
    return { audience: resource.audience, scope: resource.scopes.join(' '), accessTokenFormat: 'jwt', accessTokenTTL: resource.accessTokenTtl }
  }

  list (): Array<Required<ApiResource>> {
    return [...this.#resources.values()].map(resource => ({ ...resource, scopes: [...resource.scopes] }))
  }

  /**
   * The one audience of a token when the request named none but the grant holds several:
   * the default API when granted (today's behaviour), else the first one granted.
   */
  pick (granted: readonly string[]): string | undefined {
    return granted.includes(this.defaultAudience) ? this.defaultAudience : granted[0]
  }
}
