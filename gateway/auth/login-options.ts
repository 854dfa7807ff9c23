/**
 * The OpenID Connect options a page may pass through `/bff/login` to the
 * identity provider (Core §3.1.2.1): `prompt`, `max_age`, `acr_values`,
 * `login_hint` and `ui_locales`. Each is checked here, so nothing the gateway
 * would not send on purpose reaches the IdP: one value per option, from a
 * closed set or a bounded shape.
 */

export const LOGIN_OPTIONS = ['prompt', 'max_age', 'acr_values', 'login_hint', 'ui_locales'] as const
export type LoginOption = typeof LOGIN_OPTIONS[number]

/** The options as validated, ready to add to the authorization request. */
export type LoginParams = Partial<Record<LoginOption, string>>

export type LoginOptionsResult = { ok: true, params: LoginParams } | { ok: false, message: string }

const PROMPTS: ReadonlySet<string> = new Set(['none', 'login', 'consent', 'select_account'])

/** Longest `max_age` accepted: a century of seconds, beyond any session. */
const MAX_MAX_AGE = 3_153_600_000
const MAX_HINT_LENGTH = 256
const MAX_LIST_ENTRIES = 10

/**
 * One `acr_values` entry (and one acr a route policy may require): RFC 6749's NQCHAR, which an
 * authorization request can carry space-separated, at most 256 characters.
 */
export const ACR_VALUE = /^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/
// A BCP 47 language tag's shape (primary language, then subtags).
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,7}$/
// Controls, invisible format characters, lone surrogates and the Unicode line breaks.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/u

type Check = (value: string) => string | undefined

/** A space-separated list of 1 to MAX_LIST_ENTRIES distinct entries, each passing `entry`. */
function spaceSeparated (entry: (item: string) => boolean, what: string): Check {
  return (value) => {
    const items = value.split(' ')
    if (items.length > MAX_LIST_ENTRIES || items.some(item => !entry(item))) return `must be up to ${MAX_LIST_ENTRIES} ${what}, separated by single spaces`
    if (new Set(items).size !== items.length) return 'must not name a value twice'
    return undefined
  }
}

const CHECKS: Record<LoginOption, Check> = {
  prompt: (value) => {
    const problem = spaceSeparated(item => PROMPTS.has(item), 'of none, login, consent, select_account')(value)
    if (problem) return problem
    return value !== 'none' && value.split(' ').includes('none') ? 'none cannot be combined with other values' : undefined
  },
  max_age: (value) => /^\d{1,10}$/.test(value) && Number(value) <= MAX_MAX_AGE ? undefined : 'must be a whole number of seconds (0 or more)',
  acr_values: spaceSeparated(item => ACR_VALUE.test(item), 'authentication context class references'),
  login_hint: (value) => value.length <= MAX_HINT_LENGTH && !UNPRINTABLE.test(value) ? undefined : `must be printable text of at most ${MAX_HINT_LENGTH} characters`,
  ui_locales: spaceSeparated(item => LANGUAGE_TAG.test(item), 'language tags (such as en or fr-CA)'),
}

/**
 * Reads the login options of a `/bff/login` query. Absent options are left out; anything else
 * (an empty or repeated option, a value outside its set or shape) is refused with a message that
 * names the option.
 */
export function parseLoginOptions (query: Readonly<Record<string, unknown>>): LoginOptionsResult {
  const params: LoginParams = {}
  for (const option of LOGIN_OPTIONS) {
    const value = query[option]
    if (value === undefined) continue
    if (typeof value !== 'string') return { ok: false, message: `${option} must be given once` }
    if (value === '') return { ok: false, message: `${option} must not be empty` }
    const problem = CHECKS[option](value)
    if (problem) return { ok: false, message: `${option} ${problem}` }
    params[option] = value
  }
  return { ok: true, params }
}

/**
 * The options for a login that must re-authenticate the user at the IdP (their session was
 * revoked from elsewhere). A silent login cannot show a login page: `max_age=0` then makes the
 * IdP answer `login_required` instead of reusing its session; any other login gets `prompt=login`.
 */
export function forcingReauthentication (params: LoginParams): LoginParams {
  if (params.prompt === 'none') return { ...params, max_age: '0' }
  const prompts = new Set(params.prompt?.split(' ') ?? [])
  prompts.add('login')
  return { ...params, prompt: [...prompts].join(' ') }
}
