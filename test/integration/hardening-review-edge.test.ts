/**
 * The gateway's edges, as a security review found them (issue 15, items 5, 6
 * and 8): what a caller writes never becomes a metric label or a raw audit
 * field; a callback that fails the OIDC client's own checks is a failed login,
 * not an IdP outage; a request without exactly one Host header is refused with
 * the contract's JSON on both listeners.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { captureLogLines } from '../helpers/log-lines.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { authenticateAtIdp, capture, startLogin } from '../helpers/login-flow.js'
import { firstBody, rawExchange } from '../helpers/raw-http.js'

/** Every line both listeners log, parsed. */
const { lines: logLines, stream: logStream } = captureLogLines()

let stack: Stack
let redis: Redis
beforeAll(async () => {
  stack = await startStack({
    deps: { logStream },
    gatewayEnv: { LOG_LEVEL: 'info' },
  })
  redis = new Redis(stack.redis!.url)
})
afterAll(async () => {
  redis?.disconnect()
  await stack?.close()
})

const scrape = async () => (await fetch(`${stack.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()

/** The series of one metric on /metrics, by label set, with their values. */
function seriesOf (text: string, metric: string): Map<string, number> {
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue
    const at = line.lastIndexOf(' ')
    series.set(line.slice(metric.length, at), Number(line.slice(at + 1)))
  }
  return series
}

const sessionKeys = () => redis.keys('bff:{s:*}')
const auditLinesFrom = (index: number, event: string) => logLines.slice(index).filter(line => line.audit === event)
const sessionCookies = (setCookies: string[]) => setCookies.filter(line => line.startsWith(`${stack.gateway.config.cookie.name}=`))

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/** A browser with a login in flight (its binding cookie set), and that login's `state`. */
async function pendingLogin () {
  const browser = new HttpBrowser()
  const { authorizationUrl } = await startLogin(browser, stack.publicUrl)
  return { browser, authorizationUrl, state: new URL(authorizationUrl).searchParams.get('state')! }
}

/** `/bff/callback` as an attacker can write it: any parameters, under a state this browser really started. */
function forgedCallback (params: Record<string, string>): string {
  const url = new URL('/bff/callback', stack.publicUrl)
  url.search = new URLSearchParams(params).toString()
  return url.href
}

describe('5. what a callback calls an error never becomes a metric label', () => {
  it('callbacks with many made-up error= values add one series at most (reason "other"); the value reaches the audit line cut short and escaped', async () => {
    const before = seriesOf(await scrape(), 'bff_audit_events_total')
    const linesBefore = logLines.length
    const made: string[] = []
    for (let i = 0; i < 20; i += 1) {
      const { browser, state } = await pendingLogin()
      const error = `made_up_${randomBytes(6).toString('hex')}\n\u0000\u2028${'x'.repeat(4000)}`
      made.push(error)
      const response = await capture(browser, forgedCallback({ state, iss: stack.idp.issuer, error }))
      expect(response.status).toBe(401)
      expect(JSON.parse(response.body)).toEqual({ error: 'login_failed', message: expect.any(String) })
    }

    const text = await scrape()
    const after = seriesOf(text, 'bff_audit_events_total')
    const added = [...after.keys()].filter(labels => !before.has(labels))
    expect(added.filter(labels => labels !== '{event="login_failed",reason="other"}')).toEqual([])
    const other = '{event="login_failed",reason="other"}'
    expect((after.get(other) ?? 0) - (before.get(other) ?? 0)).toBe(20)
    expect(text).not.toContain('made_up_')

    const lines = auditLinesFrom(linesBefore, 'login_failed')
    expect(lines).toHaveLength(20)
    for (const [index, line] of lines.entries()) {
      expect(line.reason).toBe('other')
      const strings = Object.values(line).filter((value): value is string => typeof value === 'string')
      // The made-up value is there for the investigator, recognisably...
      expect(strings.some(value => value.startsWith(made[index]!.slice(0, 'made_up_'.length + 12)))).toBe(true)
      // ...but no field carries it whole, or with its line breaks and NULs.
      for (const value of strings) {
        expect(value.length).toBeLessThanOrEqual(300)
        expect(value).not.toMatch(CONTROL)
      }
    }
  })

  it.each(['access_denied', 'login_required', 'consent_required'])('a registered OAuth error (%s) keeps its own reason', async (error) => {
    const series = `{event="login_failed",reason="${error}"}`
    const before = seriesOf(await scrape(), 'bff_audit_events_total').get(series) ?? 0
    const { browser, state } = await pendingLogin()
    const response = await capture(browser, forgedCallback({ state, iss: stack.idp.issuer, error }))
    expect(response.status).toBe(401)
    expect(JSON.parse(response.body)).toMatchObject({ error: 'login_failed' })
    expect(seriesOf(await scrape(), 'bff_audit_events_total').get(series)).toBe(before + 1)
  })

  it('requests for made-up paths add no request series beyond the route templates and "unmatched"', async () => {
    const before = seriesOf(await scrape(), 'bff_http_requests_total')
    for (let i = 0; i < 20; i += 1) {
      const word = randomBytes(6).toString('hex')
      await (await fetch(`${stack.publicUrl}/${word}?${word}=1`)).arrayBuffer()
      await (await fetch(`${stack.publicUrl}/api/${word}`, { method: 'DELETE' })).arrayBuffer()
    }
    const after = seriesOf(await scrape(), 'bff_http_requests_total')
    const added = [...after.keys()].filter(labels => !before.has(labels))
    expect(added.length).toBeLessThanOrEqual(2)
    for (const labels of after.keys()) expect(labels).toMatch(/^\{route="(unmatched|\/[^"]*)",method="[A-Z]+",status="\d{3}"\}$/)
    for (const labels of added) expect(labels).toMatch(/^\{route="(unmatched|\/api\/\*)",/)
  })
})

describe('6. a callback that fails the OIDC client\'s own checks is a failed login (400), not an IdP outage (502)', () => {
  /** A browser that has been through the IdP (the authorization URL changed by `tamper`) and holds the callback URL, unvisited. */
  async function atCallback (tamper: (authorization: URL) => void = () => {}) {
    const { browser, authorizationUrl } = await pendingLogin()
    const authorization = new URL(authorizationUrl)
    tamper(authorization)
    const { callbackUrl } = await authenticateAtIdp(browser, authorization.href, stack.publicUrl, { username: 'alice', password: 'alice-password' })
    return { browser, callbackUrl: new URL(callbackUrl) }
  }

  async function expectFailedLogin (browser: HttpBrowser, callbackUrl: string) {
    const sessionsBefore = (await sessionKeys()).length
    const linesBefore = logLines.length
    const response = await capture(browser, callbackUrl)
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(JSON.parse(response.body)).toEqual({ error: 'login_failed', message: expect.any(String) })
    expect(sessionCookies(response.setCookies)).toEqual([])
    expect((await sessionKeys()).length).toBe(sessionsBefore)
    expect((await browser.fetch(`${stack.publicUrl}/bff/user`)).status).toBe(401)
    expect(auditLinesFrom(linesBefore, 'login_failed')).toEqual([expect.objectContaining({ reason: 'invalid_response' })])
  }

  it('the IdP puts its issuer in the callback (RFC 9207), so the checks below are real', async () => {
    const { callbackUrl } = await atCallback()
    expect(callbackUrl.searchParams.get('iss')).toBe(stack.idp.issuer)
    expect(callbackUrl.searchParams.get('code')).toBeTruthy()
  })

  it.each([
    ['another issuer in iss', (url: URL) => url.searchParams.set('iss', 'https://idp.evil.example')],
    ['no iss', (url: URL) => url.searchParams.delete('iss')],
    ['no code', (url: URL) => url.searchParams.delete('code')],
    ['two codes', (url: URL) => url.searchParams.append('code', 'another-code')],
  ])('%s: 400 login_failed, no session, an audit line', async (_case, tamper) => {
    const { browser, callbackUrl } = await atCallback()
    tamper(callbackUrl)
    await expectFailedLogin(browser, callbackUrl.href)
  })

  it('a real code whose ID token carries a nonce other than the one the login recorded: 400 login_failed, no session', async () => {
    // The authorization request keeps the gateway's PKCE challenge (the code exchange passes)
    // but names another nonce, as an attacker who rewrote it on the way to the IdP would.
    const { browser, callbackUrl } = await atCallback(authorization => authorization.searchParams.set('nonce', randomBytes(16).toString('base64url')))
    await expectFailedLogin(browser, callbackUrl.href)
  })

  it('an error the IdP itself reports stays 401 login_failed, with its code as the reason', async () => {
    const { browser, state } = await pendingLogin()
    const linesBefore = logLines.length
    const response = await capture(browser, forgedCallback({ state, iss: stack.idp.issuer, error: 'access_denied' }))
    expect(response.status).toBe(401)
    expect(JSON.parse(response.body)).toMatchObject({ error: 'login_failed' })
    expect(auditLinesFrom(linesBefore, 'login_failed')).toEqual([expect.objectContaining({ reason: 'access_denied' })])
  })
})

describe('8. a request without exactly one Host header', () => {
  const requests: Array<[name: string, bytes: string]> = [
    ['no Host', 'GET /healthz HTTP/1.1\r\n\r\n'],
    ['no Host, on a path no route has', 'GET /nowhere HTTP/1.1\r\n\r\n'],
    ['two Host headers with one value', 'GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n'],
    ['two Host headers with two values', 'GET /healthz HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n'],
  ]
  const listeners: Array<[name: string, url: () => string]> = [
    ['public', () => stack.publicUrl],
    ['admin', () => stack.gateway.adminUrl],
  ]

  describe.each(listeners)('on the %s listener', (_listener, url) => {
    it.each(requests)('%s: 400 invalid_request as JSON, connection closed', async (_case, bytes) => {
      const exchange = await rawExchange(url(), bytes)
      expect(exchange.statuses).toEqual([400])
      expect(exchange.text).toMatch(/\r\ncontent-type: application\/json/i)
      expect(firstBody(exchange)).toEqual({ error: 'invalid_request', message: expect.stringMatching(/Host/) })
      expect(exchange.closedByServer).toBe(true)
    })

    it('one Host header, or none on HTTP/1.0 (which does not require it), is served', async () => {
      const host = new URL(url()).host
      const exchange = await rawExchange(url(), `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n`)
      expect(exchange.statuses).toEqual([200, 200])
    })
  })
})
