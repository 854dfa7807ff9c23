/**
 * The browser client against the real product: Redis, the oidc-provider IdP,
 * the token-only API and a gateway. The test HttpBrowser (cookie jar,
 * same-origin Sec-Fetch headers) stands in for the browser's `fetch`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBffClient, type BffClient } from '../src/browser.js'
import { TEST_ADMIN_TOKEN } from '../../test/helpers/gateway.js'
import type { HttpBrowser } from '../../test/helpers/http-browser.js'
import { loginThroughIdp } from '../../test/helpers/login-flow.js'
import { signIn } from '../../test/helpers/sign-in.js'
import { startStack, type Stack } from '../../test/helpers/stack.js'
import { nextEvent } from './fakes/events.js'
import { fakePage } from './fakes/fake-page.js'

let stack: Stack
beforeAll(async () => { stack = await startStack() })
afterAll(() => stack?.close())

const clients: BffClient[] = []
afterAll(() => { for (const client of clients) client.close() })

/** A client whose requests go through `browser`, as a same-origin `fetch` of a page on the gateway would; `paths` records them. */
function clientIn (browser: HttpBrowser, channelName: string | false = false) {
  const paths: string[] = []
  const client = createBffClient({
    baseUrl: stack.publicUrl,
    channelName,
    window: fakePage(`${stack.publicUrl}/`).window,
    fetch: (input, init) => {
      const url = new URL(String(input))
      paths.push(`${init?.method ?? 'GET'} ${url.pathname}`)
      return browser.fetch(url, init, { initiator: stack.publicUrl })
    },
  })
  clients.push(client)
  return { client, paths }
}

describe('browser client on the real gateway', () => {
  it('reads the user and calls the API, adding the CSRF token to changes', async () => {
    const { browser } = await signIn(stack.publicUrl)
    const { client, paths } = clientIn(browser)
    expect(await client.user()).toMatchObject({ sub: 'alice', roles: expect.arrayContaining(['user']) })
    expect(await client.get('/api/orders')).toMatchObject({ user: 'alice' })
    expect(await client.post('/api/orders', { item: 'widget', quantity: 1 })).toMatchObject({ order: { item: 'widget', quantity: 1 }, user: 'alice' })
    expect(paths).toEqual(['GET /bff/user', 'GET /api/orders', 'POST /api/orders'])
  })

  it('fetches the CSRF token again once after a new login made it stale, and the change goes through', async () => {
    const { browser } = await signIn(stack.publicUrl)
    const { client, paths } = clientIn(browser)
    await client.user()
    await loginThroughIdp(browser, stack.publicUrl, { username: 'alice', password: 'alice-password' }) // a new session, a new token
    expect(await client.post('/api/orders', { item: 'gadget' })).toMatchObject({ order: { item: 'gadget' } })
    expect(paths).toEqual(['GET /bff/user', 'POST /api/orders', 'GET /bff/user', 'POST /api/orders'])
  })

  it('logs out: the other tab hears it, and the gateway no longer knows the session', async () => {
    const { browser } = await signIn(stack.publicUrl)
    const channel = `bff-integration-${Math.random()}`
    const { client: tab } = clientIn(browser, channel)
    const { client: otherTab } = clientIn(browser, channel)
    await Promise.all([tab.user(), otherTab.user()])
    const heard = nextEvent(otherTab, 'signedOut')
    const { logoutUrl } = await tab.logout()
    expect(logoutUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//)
    expect(await heard).toEqual({ reason: 'logout', fromOtherTab: true })
    expect(await otherTab.user()).toBeNull()
    await expect(otherTab.get('/api/orders')).rejects.toMatchObject({ status: 401 })
  })

  it('turns the 401 after an operator revoked the session into a signedOut event', async () => {
    const { browser } = await signIn(stack.publicUrl, 'bob')
    const { client } = clientIn(browser)
    await client.user()
    const revoked = await fetch(`${stack.gateway.adminUrl}/admin/users/bob/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(revoked.status).toBe(200)
    const signedOut = nextEvent(client, 'signedOut')
    expect((await client.fetch('/api/orders')).status).toBe(401)
    expect((await signedOut).fromOtherTab).toBe(false)
    expect(client.state.status).toBe('signedOut')
  })
})
