/**
 * The native app simulated in the browser (demo/native.html) on a real
 * gateway, in real Chromium: the sign-in opens in a popup standing in for the
 * system browser, which the gateway sends back to the app's redirect URI (a
 * page of the demo, in NATIVE_REDIRECT_URIS); the page redeems the handoff
 * code with its non-extractable WebCrypto key and calls the gateway with
 * `Authorization: Session …` and a DPoP proof, never a cookie.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { Browser, Request } from 'playwright-core'
import type { Stack } from '../helpers/stack.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { callFromPage, openPage, startDemo, type DemoSetup, typeCredentials } from './chromium.js'

let stack: Stack
let browser: Browser
let gatewayUrl: string

// Started by the first test rather than in beforeAll: a gateway that refuses the setting fails each test, with its reason.
let demo: Promise<DemoSetup> | undefined
beforeEach(async () => {
  demo ??= startDemo(publicUrl => ({ NATIVE_REDIRECT_URIS: `${publicUrl}/native-callback.html` }))
  ;({ stack, browser, gatewayUrl } = await demo)
})
afterAll(async () => { await (await demo?.catch(() => undefined))?.close() })

interface AdminSession { id: string, userAgent: string }

async function sessionsOf (sub: string): Promise<AdminSession[]> {
  const response = await fetch(`${stack.gateway.adminUrl}/admin/users/${sub}/sessions`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  expect(response.status).toBe(200)
  return (await response.json() as { sessions: AdminSession[] }).sessions
}

describe('the native app demo (native.html)', () => {
  it('signs in through the popup, calls the API with its bound credential, lists its device and logs out', async () => {
    const { context, page } = await openPage(browser)
    const problems: string[] = []
    page.on('pageerror', error => problems.push(`page error: ${error.message}`))
    page.on('console', message => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
    })
    const calls: Request[] = []
    page.on('request', request => { if (new URL(request.url()).pathname.startsWith('/api/')) calls.push(request) })
    await page.goto(`${gatewayUrl}/native.html`)
    await page.locator('#signed-out').waitFor()

    // The system browser: a popup through /bff/login?client=native, the IdP's form, and back to the app's redirect URI.
    const opened = context.waitForEvent('page')
    await page.locator('#sign-in').click()
    const systemBrowser = await opened
    await page.locator('#waiting').waitFor()
    const closed = systemBrowser.waitForEvent('close')
    await typeCredentials(systemBrowser, gatewayUrl, 'alice', 'alice-password')
    await page.locator('#signed-in').waitFor()
    await closed // the redirect page handed the URL to the app and closed itself
    expect(await page.locator('#user-sub').innerText()).toBe('alice')
    expect(await page.locator('#device-key').innerText()).toContain('private key extractable: false')
    // No cookie anywhere: the native sign-in sets none, and the app sends none.
    expect((await context.cookies(gatewayUrl)).map(c => c.name)).not.toContain('bff')

    stack.api.clear()
    const orders = await callFromPage(page, 'GET /api/orders')
    expect(orders.status).toBe(200)
    expect(JSON.parse(orders.body)).toMatchObject({ user: 'alice' })
    expect((await callFromPage(page, 'POST /api/orders')).status).toBe(201)
    // What the app sent: its credential and a proof; what the API got: the access token only.
    for (const call of calls) {
      const headers = await call.allHeaders()
      expect(headers.authorization).toMatch(/^Session \S+$/)
      expect(headers.dpop).toMatch(/^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/)
      expect(headers.cookie).toBeUndefined()
    }
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['GET /orders', 'POST /orders'])
    for (const request of stack.api.received) {
      expect(request.headers.authorization).toMatch(/^Bearer eyJ/)
      expect(request.headers.dpop).toBeUndefined()
    }

    const current = page.locator('#devices li[data-current="true"]')
    await current.waitFor()
    expect(await current.locator('.device-agent').innerText()).toBe('Native app demo')
    const handle = await current.getAttribute('data-id')
    expect((await sessionsOf('alice')).map(s => s.id)).toContain(handle)

    await page.locator('#sign-out').click()
    await page.locator('#signed-out-reason', { hasText: 'You have signed out.' }).waitFor()
    expect((await sessionsOf('alice')).map(s => s.id)).not.toContain(handle)
    expect(problems).toEqual([])
  })

  it('shows the sign-in screen when a call answers 401 (an operator revoked the session)', async () => {
    const { context, page } = await openPage(browser)
    await page.goto(`${gatewayUrl}/native.html`)
    const opened = context.waitForEvent('page')
    await page.locator('#sign-in').click()
    await typeCredentials(await opened, gatewayUrl, 'bob', 'bob-password')
    const handle = await page.locator('#devices li[data-current="true"]').getAttribute('data-id')
    const revoked = await fetch(`${stack.gateway.adminUrl}/admin/sessions/${handle}`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(revoked.status).toBe(200)

    stack.api.clear()
    await page.locator('button.call[data-path="/api/orders"][data-method="GET"]').click()
    await page.locator('#signed-out').waitFor()
    expect(await page.locator('#signed-out-reason').innerText()).toBe('Your session has ended: the gateway answered 401 unauthenticated. Sign in again to continue.')
    expect(stack.api.received).toEqual([])
  })
})
