/**
 * Authentication context classes of the mock IdP (when enabled): a password
 * login reaches `urn:mock:pwd`, a login with a one-time code `urn:mock:mfa`.
 * `acr_values` in the authorization request says which one the login page asks
 * for, and a session whose `acr` is not among them is asked to log in again
 * (step-up); oidc-provider alone only enforces `acr` asked as an essential claim.
 */
import type { Check as CheckType, InteractionPolicy, interactionPolicy as InteractionPolicyModule } from 'oidc-provider'

export const ACR_PASSWORD = 'urn:mock:pwd'
export const ACR_MFA = 'urn:mock:mfa'
export const SUPPORTED_ACR_VALUES: readonly string[] = [ACR_PASSWORD, ACR_MFA]
/** The one-time code every user's "authenticator" shows, unless configured otherwise. */
export const DEFAULT_MFA_CODE = '123456'

export interface AuthenticationContextOptions {
  /** The one-time code an MFA login needs; default 123456. */
  mfaCode?: string
}

function acrValuesOf (value: unknown): string[] {
  return typeof value === 'string' ? value.split(' ').filter(Boolean) : []
}

/** The acr the login should reach: the first value of `acr_values` we support (they come in order of preference), else password. */
export function requestedAcr (acrValues: unknown): string {
  return acrValuesOf(acrValues).find(value => SUPPORTED_ACR_VALUES.includes(value)) ?? ACR_PASSWORD
}

/** What the check reads of oidc-provider's request context. */
interface LoginCheckContext {
  oidc: {
    params: { acr_values?: unknown }
    session: { accountId?: string }
    acr?: string
    result?: { login?: unknown }
  }
}

/** oidc-provider's default prompts, the login prompt also asking when the session's acr is not one of `acr_values`. */
export function stepUpPolicy (policies: typeof InteractionPolicyModule): InteractionPolicy {
  const { Check, base } = policies
  const policy = base()
  // A check added after the prompt was built gets no error code of its own: prompt=none must answer login_required.
  const acrCheck: CheckType = new Check('acr_values', 'none of the requested ACRs is the session\'s', 'login_required', (ctx: unknown) => {
    const { oidc } = ctx as LoginCheckContext
    const wanted = acrValuesOf(oidc.params.acr_values)
    if (wanted.length === 0 || !oidc.session.accountId || oidc.result?.login) return Check.NO_NEED_TO_PROMPT
    return wanted.includes(oidc.acr ?? '') ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT
  })
  const login = policy.get('login')
  if (!login) throw new Error('oidc-provider\'s base interaction policy has no login prompt')
  login.checks.add(acrCheck)
  return policy
}
