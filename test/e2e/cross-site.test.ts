/**
 * CSRF in a real browser: the user is signed in to the gateway, then visits
 * another page that tries to act with their session — a form POST and
 * credentialed fetches to the gateway's /api/orders. The gateway refuses every
 * one (403 `csrf`) and the upstream API receives nothing.
 *
 * Cookies are per host, not per port, so the page that is a different SITE is
 * served as `localhost` while the gateway is `127.0.0.1`; a page on
 * `127.0.0.1` at another port is the same site (the browser does send the
 * SameSite=Lax cookie to it) but another origin.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { startStack, type Stack } from '../helpers/stack.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { freePort } from '../helpers/free-port.js'
import { DEMO_DIR, openPage, startDemo, type DemoSetup, signInThroughPage, startStaticSite, type StaticSite } from './chromium.js'

let stack: Stack
let browser: Browser
let gatewayUrl: string

let demo: DemoSetup | undefined
beforeAll(async () => {
  demo = await startDemo()
  ;({ stack, browser, gatewayUrl } = demo)
})
afterAll(async () => { await demo?.close() })

/** The attacker's pages, aimed at `target` (the gateway). */
function attackerPages (target: string): Record<string, string> {
  const orders = JSON.stringify(`${target}/api/orders`)
  const user = JSON.stringify(`${target}/bff/user`)
  return {
    // Credentialed fetches: a "simple" POST (no preflight), a POST with a guessed CSRF header
    // (needs a preflight), and an attempt to read /bff/user for the real CSRF token.
    '/fetch.html': `<!doctype html><title>Win a prize</title><script>
      const attempt = (label, url, init) => fetch(url, { credentials: 'include', ...init })
        .then(async r => label + ': read ' + r.status + ' ' + await r.text(), e => label + ': blocked (' + e.name + ')')
      Promise.all([
        attempt('post', ${orders}, { method: 'POST', body: '{"item":"stolen"}' }),
        attempt('post-with-header', ${orders}, { method: 'POST', headers: { 'x-csrf-token': 'guess', 'content-type': 'application/json' }, body: '{}' }),
        attempt('read-user', ${user}, {}),
      ]).then(results => { window.results = results })
    </script>`,
    // A classic auto-submitting form: a top-level cross-site POST navigation.
    '/form.html': `<!doctype html><title>Win a prize</title>
      <form id="f" method="post" action=${orders} enctype="application/x-www-form-urlencoded">
        <input name="item" value="stolen"><input name="quantity" value="99">
      </form>
      <script>document.getElementById('f').submit()</script>`,
  }
}

/** The gateway's count of CSRF refusals for one reason, from its metrics. */
async function csrfRefusals (reason: 'cross_site' | 'origin' | 'token'): Promise<number> {
  const response = await fetch(`${stack.gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
  const line = (await response.text()).split('\n')
    .find(l => l.startsWith('bff_audit_events_total{') && l.includes('event="csrf_refused"') && l.includes(`reason="${reason}"`))
  return line ? Number(line.split(' ').at(-1)) : 0
}

const allRefusals = async () => ({ crossSite: await csrfRefusals('cross_site'), origin: await csrfRefusals('origin'), token: await csrfRefusals('token') })

async function signedInPage (): Promise<Page> {
  const { page } = await openPage(browser)
  await page.goto(`${gatewayUrl}/`)
  await signInThroughPage(page, gatewayUrl, 'alice')
  return page
}

async function runAttack (page: Page, site: StaticSite): Promise<{ fetchResults: string[], formBody: string }> {
  await page.goto(`${site.origin}/fetch.html`)
  const fetchResults = await (await page.waitForFunction(() => (window as unknown as { results?: string[] }).results)).jsonValue() as string[]
  await page.goto(`${site.origin}/form.html`)
  await page.waitForURL(`${gatewayUrl}/api/orders`)
  return { fetchResults, formBody: await page.locator('body').innerText() }
}

describe('a page on another site', () => {
  it('cannot act with the user\'s session, by form POST or credentialed fetch; the API receives nothing', async () => {
    const page = await signedInPage()
    const site = await startStaticSite(attackerPages(gatewayUrl), 'localhost')
    onTestFinished(() => site.close())
    const before = await allRefusals()
    stack.api.clear()

    const { fetchResults, formBody } = await runAttack(page, site)

    // The page learns nothing: the gateway grants no CORS, so every credentialed fetch fails.
    expect(fetchResults).toEqual(['post: blocked (TypeError)', 'post-with-header: blocked (TypeError)', 'read-user: blocked (TypeError)'])
    // The form's navigation lands on the gateway's refusal.
    expect(JSON.parse(formBody)).toMatchObject({ error: 'csrf' })
    // Every attempt reached the gateway and was refused for Sec-Fetch-Site: cross-site:
    // the simple POST, the preflight of the POST with a header, the GET of /bff/user, the form POST.
    const after = await allRefusals()
    expect(after.crossSite - before.crossSite).toBe(4)
    // Nothing was forwarded.
    expect(stack.api.received).toEqual([])

    // The user's own session is untouched.
    await page.goto(`${gatewayUrl}/`)
    await page.locator('#signed-in').waitFor()
  })
})

describe('a page on the same site but another origin (the SameSite=Lax cookie is sent)', () => {
  it('is refused by the Origin check and cannot read the CSRF token; the API receives nothing', async () => {
    const page = await signedInPage()
    const site = await startStaticSite(attackerPages(gatewayUrl), '127.0.0.1')
    onTestFinished(() => site.close())
    expect(site.origin).not.toBe(new URL(gatewayUrl).origin)
    const before = await allRefusals()
    stack.api.clear()

    const { fetchResults, formBody } = await runAttack(page, site)

    // /bff/user answers, but without a CORS grant the page cannot read the CSRF token;
    // the POST with a guessed header is never sent, its preflight not being granted.
    expect(fetchResults).toEqual(['post: blocked (TypeError)', 'post-with-header: blocked (TypeError)', 'read-user: blocked (TypeError)'])
    expect(JSON.parse(formBody)).toMatchObject({ error: 'csrf' })
    // The fetch POST and the form POST carried the session cookie and a foreign Origin.
    const after = await allRefusals()
    expect(after.origin - before.origin).toBe(2)
    expect(stack.api.received).toEqual([])
  })
})

describe('an identity provider on another site', () => {
  // As with any hosted IdP: its login page is cross-site to the gateway, so the callback's
  // redirect to returnTo arrives with Sec-Fetch-Site: cross-site. The page must still open.
  let foreign: Stack
  beforeAll(async () => {
    const port = await freePort()
    foreign = await startStack({ idp: { port, issuer: `http://localhost:${port}` }, gatewayEnv: { STATIC_DIR: DEMO_DIR } })
  })
  afterAll(async () => { await foreign?.close() })

  it('signs in and lands on the signed-in page; the BFF endpoints still refuse cross-site requests', async () => {
    const { page } = await openPage(browser)
    await page.goto(`${foreign.gateway.url}/`)
    await signInThroughPage(page, foreign.gateway.url, 'alice')
    expect(new URL(foreign.idp.issuer).hostname).toBe('localhost')
    expect(await page.locator('#user-name').innerText()).toBe('Alice Example')

    // A link from another site opens the page too, while the API stays closed to it.
    const site = await startStaticSite({
      '/link.html': `<!doctype html><a id="app" href="${foreign.gateway.url}/">app</a><a id="api" href="${foreign.gateway.url}/api/orders">api</a>`,
    }, 'localhost')
    onTestFinished(() => site.close())
    await page.goto(`${site.origin}/link.html`)
    await page.locator('#app').click()
    await page.waitForURL(`${foreign.gateway.url}/`)
    await page.locator('#signed-in').waitFor()
    await page.goto(`${site.origin}/link.html`)
    await page.locator('#api').click()
    await page.waitForURL(`${foreign.gateway.url}/api/orders`)
    expect(JSON.parse(await page.locator('body').innerText())).toMatchObject({ error: 'csrf' })
  })
})
