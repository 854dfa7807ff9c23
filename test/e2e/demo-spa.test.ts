/**
 * What a person sees: the demo SPA (demo/) served by a real gateway and driven
 * in real Chromium, against real Redis, the real oidc-provider identity
 * provider and the real token-only API. The password is typed into the IdP's
 * own login page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { Stack } from '../helpers/stack.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { callFromPage, openPage, startDemo, type DemoSetup, screenshot, signInThroughPage, typeCredentials } from './chromium.js'

let stack: Stack
let browser: Browser
let gatewayUrl: string

let demo: DemoSetup | undefined
beforeAll(async () => {
  demo = await startDemo()
  ;({ stack, browser, gatewayUrl } = demo)
})
afterAll(async () => { await demo?.close() })

const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/

/** Every header and body the page received from the gateway, for "no token ever" checks. */
function recordGatewayResponses (page: Page): () => Promise<string[]> {
  const seen: Array<Promise<string>> = []
  page.on('response', response => {
    if (new URL(response.url()).origin !== new URL(gatewayUrl).origin) return
    seen.push((async () => {
      const headers = JSON.stringify(await response.allHeaders())
      const body = response.status() >= 300 && response.status() < 400 ? '' : await response.text().catch(() => '')
      return `${response.request().method()} ${response.url()} ${response.status()}\n${headers}\n${body}`
    })())
  })
  return () => Promise.all(seen)
}

const signedOutReason = (page: Page) => page.locator('#signed-out-reason').innerText()

describe('signing in', () => {
  it('goes through the identity provider\'s login form and shows the user\'s name and roles', async () => {
    const { page } = await openPage(browser)
    const responses = recordGatewayResponses(page)
    const problems: string[] = []
    page.on('pageerror', error => problems.push(`page error: ${error.message}`))
    page.on('console', message => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
    })
    const document = await page.goto(`${gatewayUrl}/`)
    // The page works under the gateway's strict CSP: no inline script or style is needed.
    const csp = document?.headers()['content-security-policy']
    expect(csp).toMatch(/script-src 'self'(;|$)/)
    expect(csp).toMatch(/style-src 'self'(;|$)/)
    await expect(page.locator('#signed-out').isVisible()).resolves.toBe(true)
    await expect(page.locator('#signed-in').isVisible()).resolves.toBe(false)

    const { loginPageUrl } = await signInThroughPage(page, gatewayUrl, 'alice')
    expect(new URL(loginPageUrl).origin).toBe(new URL(stack.idp.issuer).origin)
    expect(page.url()).toBe(`${gatewayUrl}/`)
    expect(await page.locator('#user-name').innerText()).toBe('Alice Example')
    expect(await page.locator('#user-sub').innerText()).toBe('alice')
    expect(await page.locator('#user-roles .chip').allInnerTexts()).toEqual(['user'])
    expect(await page.locator('#account-name').innerText()).toBe('Alice Example')
    expect(await page.locator('#devices li[data-current="true"]').count()).toBe(1)

    for (const entry of await responses()) expect(entry, 'a gateway response carried a JWT').not.toMatch(JWT)
    expect(problems).toEqual([])
  })

  it('keeps the session cookie HttpOnly: it exists in the browser, page scripts cannot see it, storage is empty', async () => {
    const { context, page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/`)
    await signInThroughPage(page, gatewayUrl, 'alice')

    const cookie = (await context.cookies(gatewayUrl)).find(c => c.name === 'bff')
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false })
    expect(cookie!.value.length).toBeGreaterThan(20)

    const visible = await page.evaluate(() => ({
      cookie: document.cookie,
      localStorage: localStorage.length,
      sessionStorage: sessionStorage.length,
    }))
    expect(visible.cookie).not.toContain('bff')
    expect(visible.cookie).not.toContain(cookie!.value)
    expect(visible).toEqual({ cookie: '', localStorage: 0, sessionStorage: 0 })

    // And the page says so.
    expect(await page.locator('#document-cookie').innerText()).toBe('""')
    expect(await page.locator('#local-storage').innerText()).toBe('0 entries')
    expect(await page.locator('#session-storage').innerText()).toBe('0 entries')
    expect(await page.locator('#token-verdict').getAttribute('class')).toContain('ok')
  })
})

describe('calling the API from the page', () => {
  it('an allowed call succeeds with the token attached by the gateway; a forbidden one shows 403 and never reaches the API', async () => {
    const { page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/`)
    await signInThroughPage(page, gatewayUrl, 'alice')
    stack.api.clear()

    const orders = await callFromPage(page, 'GET /api/orders')
    expect(orders.status).toBe(200)
    expect(orders.body).toContain('Blue widget')
    expect(await page.locator('#result-status').innerText()).toBe('200')

    // POST carries the CSRF token the page read from /bff/user.
    const created = await callFromPage(page, 'POST /api/orders')
    expect(created.status).toBe(201)
    expect(created.body).toContain('Demo widget')

    const arrived = stack.api.received.map(r => `${r.method} ${r.url}`)
    expect(arrived).toEqual(['GET /orders', 'POST /orders'])
    for (const request of stack.api.received) {
      expect(request.headers.authorization).toMatch(/^Bearer eyJ/)
      expect(request.headers.cookie).toBeUndefined()
      expect(request.headers['x-csrf-token']).toBeUndefined()
    }

    const forbidden = await callFromPage(page, 'DELETE /api/admin/users/42')
    expect(forbidden.status).toBe(403)
    expect(await page.locator('#result-status').innerText()).toBe('403')
    expect(JSON.parse(forbidden.body)).toMatchObject({ error: 'forbidden' })
    expect(stack.api.received).toHaveLength(2)

    await screenshot(page, 'signed-in.png')
  })
})

describe('my devices', () => {
  it('lists this device and the others, signs out one other device, then every other device', async () => {
    const laptop = await openPage(browser)
    const phone = await openPage(browser, {
      userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    })
    const tablet = await openPage(browser, {
      userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
    })
    for (const { page } of [phone, tablet, laptop]) {
      await page.goto(`${gatewayUrl}/`)
      await signInThroughPage(page, gatewayUrl, 'bob')
    }
    const currentId = (page: Page) => page.locator('#devices li[data-current="true"]').getAttribute('data-id')
    const phoneId = await currentId(phone.page)
    const tabletId = await currentId(tablet.page)

    const devices = laptop.page.locator('#devices li')
    expect(await devices.count()).toBe(3)
    expect(await laptop.page.locator('#devices li[data-current="true"] .device-current').isVisible()).toBe(true)
    expect(await laptop.page.locator(`#devices li[data-id="${phoneId}"] .device-agent`).innerText()).toBe('Safari on iOS')
    expect(await laptop.page.locator(`#devices li[data-id="${tabletId}"] .device-agent`).innerText()).toBe('Chrome on Android')
    // The current device is signed out with the main button, not from the list.
    expect(await laptop.page.locator('#devices li[data-current="true"] .device-sign-out').isVisible()).toBe(false)

    await laptop.page.locator(`#devices li[data-id="${phoneId}"] .device-sign-out`).click()
    await laptop.page.locator('#devices-message', { hasText: 'Signed out that device.' }).waitFor()
    expect(await devices.count()).toBe(2)
    await phone.page.locator('button.call[data-path="/api/orders"][data-method="GET"]').click()
    await phone.page.locator('#signed-out').waitFor()

    await laptop.page.locator('#sign-out-others').click()
    await laptop.page.locator('#devices-message', { hasText: 'Signed out 1 other device.' }).waitFor()
    expect(await devices.count()).toBe(1)
    expect(await laptop.page.locator('#sign-out-others').isDisabled()).toBe(true)
    await tablet.page.locator('#refresh-devices').click()
    await tablet.page.locator('#signed-out').waitFor()
    expect(await signedOutReason(tablet.page)).toContain('401')

    // The laptop is still signed in.
    expect((await callFromPage(laptop.page, 'GET /api/orders')).status).toBe(200)
  })
})

/** Counts the documents `page` loads from now on: a tab that follows another must do so without a reload. */
function documentLoads (page: Page): () => number {
  let loads = 0
  page.on('load', () => { loads++ })
  return () => loads
}

/** Two tabs of one browser on the demo, signed in. */
async function twoSignedInTabs (): Promise<{ context: BrowserContext, first: Page, second: Page }> {
  const { context, page: first } = await openPage(browser)
  await first.goto(`${gatewayUrl}/`)
  await signInThroughPage(first, gatewayUrl, 'alice')
  const second = await context.newPage()
  await second.goto(`${gatewayUrl}/`)
  await second.locator('#signed-in').waitFor()
  return { context, first, second }
}

// Sharing is instant (a BroadcastChannel message); the second leaves room for a loaded machine.
const FOLLOWS_WITHIN_MS = 1_000

describe('across tabs', () => {
  it('signing out in one tab shows the signed-out state in the other within a second, without a reload', async () => {
    const { context, first, second } = await twoSignedInTabs()
    const secondLoads = documentLoads(second)
    stack.api.clear()

    const loggedOut = first.waitForResponse(`${gatewayUrl}/bff/logout`)
    await first.locator('#sign-out').click()
    expect((await loggedOut).status()).toBe(200)
    await second.locator('#signed-out').waitFor({ timeout: FOLLOWS_WITHIN_MS })
    expect(await signedOutReason(second)).toBe('You signed out in another tab.')
    expect(await second.locator('#signed-in').isVisible()).toBe(false)

    // Tab 1 goes on to end the identity provider's session, which sends it back to the demo page.
    await first.waitForURL(url => url.origin === new URL(stack.idp.issuer).origin)
    await first.getByRole('button', { name: 'Yes, sign me out' }).click()
    await first.waitForURL(`${gatewayUrl}/`)
    await first.locator('#signed-out').waitFor()
    expect((await context.cookies(gatewayUrl)).find(c => c.name === 'bff')).toBeUndefined()
    expect(secondLoads()).toBe(0)
    // Ended, not only shown as ended: a call from the second tab is refused before the API.
    expect(await second.evaluate(() => fetch('/api/orders').then(response => response.status))).toBe(401)
    expect(stack.api.received).toEqual([])
  })

  it('signing in in one tab shows the signed-in state in the other, which can then make changes (CSRF token included)', async () => {
    const { context, page: first } = await openPage(browser)
    await first.goto(`${gatewayUrl}/`)
    const second = await context.newPage()
    await second.goto(`${gatewayUrl}/`)
    await second.locator('#signed-out').waitFor()
    const secondLoads = documentLoads(second)

    await signInThroughPage(first, gatewayUrl, 'alice')
    await second.locator('#signed-in').waitFor({ timeout: FOLLOWS_WITHIN_MS })
    expect(await second.locator('#user-sub').innerText()).toBe('alice')
    expect(secondLoads()).toBe(0)
    expect((await callFromPage(second, 'POST /api/orders')).status).toBe(201)
  })

  for (const calling of ['first', 'second'] as const) {
    it(`a 401 in the ${calling} tab (an operator revoked the session) shows the sign-in screen in both`, async () => {
      const tabs = await twoSignedInTabs()
      const [caller, other] = calling === 'first' ? [tabs.first, tabs.second] : [tabs.second, tabs.first]
      const otherLoads = documentLoads(other)
      const handle = await caller.locator('#devices li[data-current="true"]').getAttribute('data-id')
      const revoked = await fetch(`${stack.gateway.adminUrl}/admin/sessions/${handle}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
      })
      expect(revoked.status).toBe(200)

      stack.api.clear()
      await caller.locator('button.call[data-path="/api/orders"][data-method="GET"]').click()
      await caller.locator('#signed-out').waitFor()
      expect(await signedOutReason(caller)).toBe('Your session has ended: the gateway answered 401 unauthenticated. Sign in again to continue.')
      await other.locator('#signed-out').waitFor({ timeout: FOLLOWS_WITHIN_MS })
      expect(await signedOutReason(other)).toBe('Your session has ended in another tab: the gateway answered 401 unauthenticated. Sign in again to continue.')
      expect(otherLoads()).toBe(0)
      expect(stack.api.received).toEqual([])
    })
  }
})

describe('silent login (prompt=none)', () => {
  /** The URLs of the documents `page` shows from now on (redirects pass without one). */
  function shownDocuments (page: Page): string[] {
    const shown: string[] = []
    page.on('framenavigated', frame => { if (frame === page.mainFrame()) shown.push(frame.url()) })
    return shown
  }
  const atIdp = (url: string) => new URL(url).origin === new URL(stack.idp.issuer).origin

  it('signs in without showing the identity provider when it has a session', async () => {
    const { context, page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/`)
    await signInThroughPage(page, gatewayUrl, 'alice')
    // The identity provider's session stays; the gateway's is forgotten by this browser, as in a new one.
    await context.clearCookies({ name: 'bff' })
    await page.reload()
    await page.locator('#signed-out').waitFor()
    const shown = shownDocuments(page)

    await page.locator('#silent-sign-in').click()
    // The final state, then what was shown on the way: waiting for the URL with the answer's marker
    // raced with the page's own script, which takes the marker out of the address bar at once.
    await page.locator('#signed-in').waitFor()
    expect(shown.filter(atIdp), 'the identity provider showed a page').toEqual([])
    expect(await page.locator('#user-sub').innerText()).toBe('alice')
    // The marker of the silent login's answer is gone from the address bar.
    expect(page.url()).toBe(`${gatewayUrl}/`)
  })

  it('reports login_required, without showing the identity provider, when it has no session', async () => {
    const { page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/`)
    await page.locator('#signed-out').waitFor()
    const shown = shownDocuments(page)

    await page.locator('#silent-sign-in').click()
    // Back on the demo page with the answer (an IdP page shown on the way would be in `shown`).
    await page.locator('#signed-out-reason', { hasText: 'login_required' }).waitFor()
    expect(shown.filter(atIdp), 'the identity provider showed a page').toEqual([])
    expect(await signedOutReason(page)).toBe('Silent sign-in: the identity provider has no session to sign you in with (login_required).')
    expect(page.url()).toBe(`${gatewayUrl}/`)
  })
})

describe('operator revocation', () => {
  it('DELETE /admin/users/alice/sessions shows the sign-in screen on the next call, and the next sign-in asks for the password', async () => {
    const { page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/`)
    await signInThroughPage(page, gatewayUrl, 'alice')
    expect((await callFromPage(page, 'GET /api/orders')).status).toBe(200)

    const response = await fetch(`${stack.gateway.adminUrl}/admin/users/alice/sessions`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    })
    expect(response.status).toBe(200)
    expect((await response.json() as { revoked: number }).revoked).toBeGreaterThanOrEqual(1)

    stack.api.clear()
    await page.locator('button.call[data-path="/api/orders"][data-method="GET"]').click()
    await page.locator('#signed-out').waitFor()
    expect(await signedOutReason(page)).toContain('401')
    expect(stack.api.received).toEqual([])

    // The IdP session is still alive, but a revoked user must authenticate again (prompt=login).
    await page.locator('#sign-in').click()
    await typeCredentials(page, gatewayUrl, 'alice', 'alice-password')
    await page.waitForURL(`${gatewayUrl}/`)
    await page.locator('#signed-in').waitFor()
    expect((await callFromPage(page, 'GET /api/orders')).status).toBe(200)
  })
})
