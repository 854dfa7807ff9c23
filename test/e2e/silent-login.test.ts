/**
 * Silent login in real Chromium (issue 18): the client library's
 * `silentLogin()` on a page the gateway serves. It signs the user in without
 * the identity provider showing anything when the IdP has a session, reports
 * `login_required` when it has none, and reports it too when the browser's
 * gateway session was revoked by an operator (the gateway then asks the IdP
 * with `max_age=0`, so its session is not reused). The page is the library's
 * own code (client/src, compiled as it is, one module per file), nothing
 * more; real Redis, the oidc-provider IdP, the gateway.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { startStack, type Stack } from '../helpers/stack.js'
import { TEST_ADMIN_TOKEN } from '../helpers/gateway.js'
import { launchChromium, openPage, typeCredentials } from './chromium.js'

const CLIENT_SRC = fileURLToPath(new URL('../../client/src', import.meta.url))

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Silent login</title><script type="module" src="/app.js"></script></head>
<body><button id="silent" type="button">Sign in silently</button><pre id="result"></pre></body>
</html>
`

// Calls silentLogin() when asked, and on the load that brings its answer back (as the README says).
const APP_JS = `import { createBffClient } from './client/browser.js'
const bff = createBffClient()
const result = document.getElementById('result')
function silent () {
  bff.silentLogin().then(
    answer => { result.textContent = JSON.stringify(answer) },
    error => { result.textContent = JSON.stringify({ failed: String(error) }) },
  ).finally(() => { result.dataset.done = 'true' })
}
document.getElementById('silent').addEventListener('click', silent)
if (new URL(location.href).searchParams.has('bff_silent')) silent()
`

/** A static site: the page above and the client library, each TypeScript module compiled on its own. */
async function buildSite (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-silent-login-'))
  await mkdir(join(dir, 'client'))
  for (const file of (await readdir(CLIENT_SRC)).filter(name => name.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(await readFile(join(CLIENT_SRC, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: file,
    })
    await writeFile(join(dir, 'client', file.replace(/\.ts$/, '.js')), outputText)
  }
  await writeFile(join(dir, 'index.html'), INDEX_HTML)
  await writeFile(join(dir, 'app.js'), APP_JS)
  return dir
}

let stack: Stack
let browser: Browser
let url: string
let site: string | undefined
beforeAll(async () => {
  site = await buildSite()
  ;[stack, browser] = await Promise.all([startStack({ gatewayEnv: { STATIC_DIR: site } }), launchChromium()])
  url = stack.gateway.url
})
afterAll(async () => {
  await browser?.close()
  await stack?.close()
  if (site) await rm(site, { recursive: true, force: true })
})

type SilentAnswer = { signedIn: true, user: { sub: string } } | { signedIn: false, error: string }

interface IdpTraffic {
  /** The page's navigations to the IdP, by URL. */
  requests: URL[]
  /** Status of every response of the IdP to the page's navigations. */
  statuses: number[]
  /** Documents of the IdP the page showed. */
  shown: string[]
}

/** Watches what the page gets from the identity provider from now on. */
function watchIdp (page: Page): IdpTraffic {
  const atIdp = (address: string) => new URL(address).origin === new URL(stack.idp.issuer).origin
  const traffic: IdpTraffic = { requests: [], statuses: [], shown: [] }
  page.on('request', request => { if (atIdp(request.url()) && request.isNavigationRequest()) traffic.requests.push(new URL(request.url())) })
  page.on('response', response => { if (atIdp(response.url()) && response.request().isNavigationRequest()) traffic.statuses.push(response.status()) })
  page.on('framenavigated', frame => { if (frame === page.mainFrame() && atIdp(frame.url())) traffic.shown.push(frame.url()) })
  return traffic
}

/** Presses the page's button and waits for silentLogin()'s answer (on this load or the one it comes back to). */
async function silentLogin (page: Page): Promise<SilentAnswer> {
  await page.locator('#silent').click()
  const result = page.locator('#result[data-done="true"]')
  await result.waitFor()
  return JSON.parse(await result.innerText()) as SilentAnswer
}

/** Signs in through the IdP's form in this page, as a person would; the page ends back on the gateway. */
async function signInAtIdp (page: Page): Promise<void> {
  await page.goto(`${url}/bff/login?returnTo=%2F`)
  await typeCredentials(page, url, 'alice', 'alice-password')
  await page.waitForURL(`${url}/`)
}

describe('silentLogin() of the client library, in Chromium', () => {
  it('signs in without the IdP showing anything when the IdP has a session', async () => {
    const { context, page } = await openPage(browser)
    await signInAtIdp(page)
    // The gateway's session is gone from this browser (as in a new visit); the IdP's stays.
    await context.clearCookies({ name: stack.gateway.config.cookie.name })
    await page.goto(`${url}/`)
    const idp = watchIdp(page)

    expect(await silentLogin(page)).toMatchObject({ signedIn: true, user: { sub: 'alice' } })
    expect(idp.requests[0]?.searchParams.get('prompt')).toBe('none')
    expect(idp.requests[0]?.searchParams.has('max_age')).toBe(false)
    expect(idp.statuses.every(status => status >= 300 && status < 400), `IdP answers: ${idp.statuses.join(', ')}`).toBe(true)
    expect(idp.shown).toEqual([])
    // The marker of the answer is gone from the address bar, and the session is real.
    expect(page.url()).toBe(`${url}/`)
    const me = await page.evaluate(async () => (await fetch('/bff/user')).status)
    expect(me).toBe(200)
  })

  it('reports login_required, without the IdP showing anything, when the IdP has no session', async () => {
    const { context, page } = await openPage(browser)
    await page.goto(`${url}/`)
    const idp = watchIdp(page)

    expect(await silentLogin(page)).toEqual({ signedIn: false, error: 'login_required' })
    expect(idp.requests[0]?.searchParams.get('prompt')).toBe('none')
    expect(idp.statuses.every(status => status >= 300 && status < 400), `IdP answers: ${idp.statuses.join(', ')}`).toBe(true)
    expect(idp.shown).toEqual([])
    expect(page.url()).toBe(`${url}/`)
    expect((await context.cookies(url)).map(cookie => cookie.name)).not.toContain(stack.gateway.config.cookie.name)
  })

  it('reports login_required after an operator revoked the browser\'s session, although the IdP still has one', async () => {
    const { page } = await openPage(browser)
    await signInAtIdp(page)
    const revoked = await fetch(`${stack.gateway.adminUrl}/admin/users/alice/sessions`, { method: 'DELETE', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    expect(revoked.status).toBe(200)
    await page.goto(`${url}/`)
    const idp = watchIdp(page)

    expect(await silentLogin(page)).toEqual({ signedIn: false, error: 'login_required' })
    // The gateway asked the IdP not to reuse its session.
    expect(idp.requests[0]?.searchParams.get('prompt')).toBe('none')
    expect(idp.requests[0]?.searchParams.get('max_age')).toBe('0')
    expect(idp.shown).toEqual([])
    expect(await page.evaluate(async () => (await fetch('/bff/user')).status)).toBe(401)
  })
})
