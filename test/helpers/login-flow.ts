/**
 * Signs a user in through the gateway and the mock IdP exactly as a browser
 * would: /bff/login → IdP authorization endpoint → login form → POST
 * credentials → redirects → /bff/callback → returnTo. Every response is kept
 * with its body text, so tests can assert what the browser did (not) see.
 *
 * The steps are exported one by one for negative tests: stop before the
 * callback, replay it, tamper with it, use another browser, ...
 */
import type { HttpBrowser } from './http-browser.js'

export interface CapturedResponse {
  method: string
  url: string
  status: number
  headers: Headers
  setCookies: string[]
  /** Absolute redirect target, when the response is a redirect. */
  location?: string
  body: string
}

export interface Credentials {
  username: string
  password: string
  /** Typed into the one-time code field (`otp`) when the IdP asks for one (its MFA login). */
  oneTimeCode?: string
}

export class LoginFlowError extends Error {
  readonly chain: CapturedResponse[]
  constructor (message: string, chain: CapturedResponse[]) {
    const last = chain.at(-1)
    super(last ? `${message} (last: ${last.method} ${last.url} → ${last.status} ${last.body.slice(0, 300)})` : message)
    this.name = 'LoginFlowError'
    this.chain = chain
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/** One request through the browser's jar, body read. */
export async function capture (browser: HttpBrowser, url: string, init: RequestInit = {}): Promise<CapturedResponse> {
  const response = await browser.fetch(url, init)
  const body = await response.text()
  const location = response.headers.get('location')
  return {
    method: (init.method ?? 'GET').toUpperCase(),
    url,
    status: response.status,
    headers: response.headers,
    setCookies: response.headers.getSetCookie(),
    ...(location && REDIRECT_STATUSES.has(response.status) ? { location: new URL(location, url).href } : {}),
    body,
  }
}

function decodeEntities (text: string): string {
  return text
    .replace(/&#(\d+);/g, (_match, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_match, code: string) => String.fromCodePoint(parseInt(code, 16)))
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
}

function attributesOf (tag: string): Record<string, string> {
  const attributes: Record<string, string> = {}
  for (const match of tag.matchAll(/([a-zA-Z_:][\w:.-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    const name = match[1]
    if (name) attributes[name.toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '')
  }
  return attributes
}

export interface HtmlForm {
  id?: string
  method: string
  /** Absolute URL the form submits to. */
  action: string
  /** Named inputs with their current values (hidden fields included). */
  fields: Record<string, string>
  /** Names of the password inputs. */
  passwordFields: string[]
}

/** The forms of an HTML page, just enough for the IdP's pages. */
export function parseForms (html: string, pageUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = []
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = attributesOf(match[1] ?? '')
    const fields: Record<string, string> = {}
    const passwordFields: string[] = []
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const inputAttributes = attributesOf(input[1] ?? '')
      const name = inputAttributes.name
      if (!name) continue
      fields[name] = inputAttributes.value ?? ''
      if (inputAttributes.type?.toLowerCase() === 'password') passwordFields.push(name)
    }
    forms.push({
      ...(attributes.id ? { id: attributes.id } : {}),
      method: (attributes.method ?? 'GET').toUpperCase(),
      action: new URL(attributes.action ?? pageUrl, pageUrl).href,
      fields,
      passwordFields,
    })
  }
  return forms
}

/** The IdP's username/password form, if the page has one. */
export function findLoginForm (page: CapturedResponse): HtmlForm | undefined {
  return parseForms(page.body, page.url).find(form => form.passwordFields.length > 0 && 'username' in form.fields)
}

/**
 * A page that posts itself on load (oidc-provider's form_post pages) to a target other than the
 * client, as a browser running its script would: e.g. the IdP ending the old user's session
 * before another user's login goes on.
 */
function selfSubmittingForm (page: CapturedResponse, clientOrigin: string): HtmlForm | undefined {
  if (page.location || !/document\.forms\[0\]\.submit\(\)/.test(page.body)) return undefined
  const [form] = parseForms(page.body, page.url)
  return form && new URL(form.action).origin !== clientOrigin ? form : undefined
}

function formSubmission (form: HtmlForm): RequestInit {
  return { method: form.method, body: new URLSearchParams(form.fields) }
}

function nextRequest (response: CapturedResponse, previous: RequestInit): RequestInit {
  const method = (previous.method ?? 'GET').toUpperCase()
  const becomesGet = response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')
  return becomesGet ? { method: 'GET' } : previous
}

export interface StartLoginOptions {
  returnTo?: string
  /** Extra query parameters for /bff/login. */
  query?: Record<string, string>
}

export interface StartLoginResult {
  response: CapturedResponse
  /** Where the gateway sends the browser: the IdP's authorization endpoint. */
  authorizationUrl: string
}

/** GET /bff/login; expects a redirect and returns its target without following it. */
export async function startLogin (browser: HttpBrowser, gatewayUrl: string, options: StartLoginOptions = {}): Promise<StartLoginResult> {
  const url = new URL('/bff/login', gatewayUrl)
  if (options.returnTo !== undefined) url.searchParams.set('returnTo', options.returnTo)
  for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value)
  const response = await capture(browser, url.href)
  if (!response.location) throw new LoginFlowError('/bff/login did not redirect', [response])
  return { response, authorizationUrl: response.location }
}

/** Same as startLogin, named after what it returns. */
export const getAuthorizationRedirect = startLogin

export interface IdpStepResult {
  /** The redirect target that left the IdP for the client (its callback), not visited. */
  callbackUrl: string
  /** Every IdP response on the way. */
  chain: CapturedResponse[]
  /** Whether the IdP asked for credentials (false when its session was reused). */
  askedForCredentials: boolean
}

/**
 * Drives the IdP from its authorization URL until it redirects back to the
 * client (the origin of `clientUrl`): follows redirects and self-posting
 * pages, fills in the login form once, passes any automatic consent. Does not
 * visit the callback.
 * Throws LoginFlowError when the IdP shows the form again (wrong password) or
 * anything unexpected.
 */
export async function authenticateAtIdp (
  browser: HttpBrowser,
  authorizationUrl: string,
  clientUrl: string,
  credentials: Credentials
): Promise<IdpStepResult> {
  const clientOrigin = new URL(clientUrl).origin
  const chain: CapturedResponse[] = []
  let url = authorizationUrl
  let init: RequestInit = {}
  let askedForCredentials = false

  for (let hop = 0; hop < 30; hop += 1) {
    const response = await capture(browser, url, init)
    chain.push(response)
    if (response.location) {
      if (new URL(response.location).origin === clientOrigin) {
        return { callbackUrl: response.location, chain, askedForCredentials }
      }
      init = nextRequest(response, init)
      url = response.location
      continue
    }
    const relay = selfSubmittingForm(response, clientOrigin)
    if (relay) {
      url = relay.action
      init = formSubmission(relay)
      continue
    }
    const form = findLoginForm(response)
    if (!form) throw new LoginFlowError('the identity provider answered with neither a redirect nor a login form', chain)
    if (askedForCredentials) throw new LoginFlowError('the identity provider refused the credentials', chain)
    askedForCredentials = true
    url = form.action
    init = submission(form, credentials)
  }
  throw new LoginFlowError('too many steps at the identity provider', chain)
}

function submission (form: HtmlForm, credentials: Credentials): RequestInit {
  const body = new URLSearchParams({
    ...form.fields,
    username: credentials.username,
    password: credentials.password,
    ...(credentials.oneTimeCode !== undefined ? { otp: credentials.oneTimeCode } : {}),
  })
  return { method: form.method, body }
}

export interface SubmitResult {
  /** The IdP's answer to the POST (a redirect on success, the form again on failure). */
  response: CapturedResponse
  /** Set when the POST, and the redirects after it, led back to the client; not visited. */
  callbackUrl?: string
  chain: CapturedResponse[]
}

/**
 * Submits credentials on a login page already fetched, then follows the IdP's
 * redirects (and self-posting pages) until they leave for the client. A wrong password leaves
 * `callbackUrl` unset and `response` holding the re-rendered form.
 */
export async function submitCredentials (
  browser: HttpBrowser,
  loginPage: CapturedResponse,
  clientUrl: string,
  credentials: Credentials
): Promise<SubmitResult> {
  const form = findLoginForm(loginPage)
  if (!form) throw new LoginFlowError('no login form on the page', [loginPage])
  const clientOrigin = new URL(clientUrl).origin
  let init = submission(form, credentials)
  const response = await capture(browser, form.action, init)
  const chain = [response]
  let current = response
  for (let hop = 0; hop < 30; hop += 1) {
    let next: string
    if (current.location) {
      if (new URL(current.location).origin === clientOrigin) return { response, callbackUrl: current.location, chain }
      init = nextRequest(current, init)
      next = current.location
    } else {
      const relay = selfSubmittingForm(current, clientOrigin)
      if (!relay) break
      init = formSubmission(relay)
      next = relay.action
    }
    current = await capture(browser, next, init)
    chain.push(current)
  }
  return { response, chain }
}

/**
 * The login up to the gateway's answer to its callback, whatever that is (a redirect, a refusal),
 * not followed further. Throws LoginFlowError when the IdP does not let the user through.
 */
export async function loginToCallback (browser: HttpBrowser, gatewayUrl: string, credentials: Credentials): Promise<CapturedResponse> {
  const { authorizationUrl } = await startLogin(browser, gatewayUrl)
  const idp = await authenticateAtIdp(browser, authorizationUrl, gatewayUrl, credentials)
  return capture(browser, idp.callbackUrl)
}

export interface LoginOptions extends Credentials, StartLoginOptions {}

export interface LoginResult {
  /** The gateway's answer to /bff/callback (a redirect to returnTo). */
  callbackResponse: CapturedResponse
  /** Every response from /bff/login to the callback, in order, gateway and IdP. */
  chain: CapturedResponse[]
  /** The gateway's responses only (/bff/login and /bff/callback). */
  responses: CapturedResponse[]
  askedForCredentials: boolean
}

/** The full login. Throws LoginFlowError unless the callback redirects to returnTo (default `/`). */
export async function loginThroughIdp (browser: HttpBrowser, gatewayUrl: string, options: LoginOptions): Promise<LoginResult> {
  const start = await startLogin(browser, gatewayUrl, options)
  const idp = await authenticateAtIdp(browser, start.authorizationUrl, gatewayUrl, options)
  const callbackResponse = await capture(browser, idp.callbackUrl)
  const chain = [start.response, ...idp.chain, callbackResponse]

  const expected = new URL(options.returnTo ?? '/', gatewayUrl).href
  if (!REDIRECT_STATUSES.has(callbackResponse.status) || callbackResponse.location !== expected) {
    throw new LoginFlowError(`the callback did not redirect to ${expected}`, chain)
  }
  return { callbackResponse, chain, responses: [start.response, callbackResponse], askedForCredentials: idp.askedForCredentials }
}

export interface IdpLogoutResult {
  chain: CapturedResponse[]
  /** Where the IdP finally sent the browser (e.g. the post-logout redirect URI), not visited if it left the IdP. */
  finalUrl: string
}

/**
 * RP-initiated logout at the IdP: opens its end-session URL (e.g. the
 * `logoutUrl` the gateway returned) and confirms "Yes, sign me out", which
 * also makes the IdP send back-channel logout to the clients of the session.
 */
export async function logoutAtIdp (browser: HttpBrowser, endSessionUrl: string): Promise<IdpLogoutResult> {
  const idpOrigin = new URL(endSessionUrl).origin
  const chain: CapturedResponse[] = []
  const page = await capture(browser, endSessionUrl)
  chain.push(page)
  const form = parseForms(page.body, page.url).find(candidate => candidate.id === 'op.logoutForm')
  if (!form) throw new LoginFlowError('the end-session page has no logout form', chain)
  let init: RequestInit = { method: 'POST', body: new URLSearchParams({ ...form.fields, logout: 'yes' }) }
  let current = await capture(browser, form.action, init)
  chain.push(current)
  while (current.location && new URL(current.location).origin === idpOrigin && chain.length < 30) {
    init = nextRequest(current, init)
    current = await capture(browser, current.location, init)
    chain.push(current)
  }
  return { chain, finalUrl: current.location ?? current.url }
}
