/**
 * What a person sees: the demo SPA (demo/) served by a real gateway and driven
 * in real Chromium, against real Redis, the real oidc-provider identity
 * provider and the real token-only API. The password is typed into the IdP's
 * own login page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
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

describe('signing out', () => {
  it('ends the session in a second tab too: its next action shows the sign-in screen', async () => {
    const { context, page: first } = await openPage(browser)
    await first.goto(`${gatewayUrl}/`)
    await signInThroughPage(first, gatewayUrl, 'alice')
    const second = await context.newPage()
    await second.goto(`${gatewayUrl}/`)
    await second.locator('#signed-in').waitFor()

    // Tab 1 signs out, then confirms at the identity provider, which sends it back to the demo page.
    await first.locator('#sign-out').click()
    await first.waitForURL(url => url.origin === new URL(stack.idp.issuer).origin)
    await first.getByRole('button', { name: 'Yes, sign me out' }).click()
    await first.waitForURL(`${gatewayUrl}/`)
    await first.locator('#signed-out').waitFor()
    expect((await context.cookies(gatewayUrl)).find(c => c.name === 'bff')).toBeUndefined()

    stack.api.clear()
    await second.locator('button.call[data-path="/api/orders"][data-method="GET"]').click()
    await second.locator('#signed-out').waitFor()
    expect(await second.locator('#signed-in').isVisible()).toBe(false)
    expect(await signedOutReason(second)).toContain('GET /api/orders answered 401')
    expect(stack.api.received).toEqual([])
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
