/**
 * Real Chromium for the end-to-end tests: one headless browser per test file,
 * a fresh context (cookie jar, storage) per test, and the few steps every test
 * takes the way a person would: open the demo page, press "Sign in", type the
 * password into the identity provider's form.
 */
import { access, mkdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'
import { startStack, type Stack, type StackOptions } from '../helpers/stack.js'

/** Debian's package (`apt-get install chromium`); CHROMIUM_PATH points elsewhere. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The demo SPA, served by the gateway through STATIC_DIR. */
export const DEMO_DIR = fileURLToPath(new URL('../../demo', import.meta.url))

/** Where screenshots go (git-ignored). */
export const ARTIFACTS_DIR = fileURLToPath(new URL('../../test-results', import.meta.url))

export async function launchChromium (): Promise<Browser> {
  try {
    await access(CHROMIUM_PATH)
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set CHROMIUM_PATH`)
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

/** A fresh browser profile for one test; closed when the test ends. */
export interface DemoSetup {
  stack: Stack
  browser: Browser
  /** The gateway's public URL, serving the demo SPA. */
  gatewayUrl: string
  close (): Promise<void>
}

/**
 * A full stack whose gateway serves the demo pages, and a Chromium to drive it, started together.
 * The pages' bundles of the client library (demo/vendor/) are built by the e2e project's global setup.
 */
export async function startDemo (gatewayEnv: (publicUrl: string) => Record<string, string> = () => ({})): Promise<DemoSetup> {
  const stackOptions: StackOptions = { gatewayEnv: publicUrl => ({ STATIC_DIR: DEMO_DIR, ...gatewayEnv(publicUrl) }) }
  const [started, launched] = await Promise.allSettled([startStack(stackOptions), launchChromium()])
  if (started.status === 'rejected' || launched.status === 'rejected') {
    // A gateway that refuses its settings leaves no browser behind (nor a browser that failed, a stack).
    await Promise.all([started, launched].map(result => result.status === 'fulfilled' ? result.value.close() : undefined))
    throw [started, launched].find(result => result.status === 'rejected')!.reason
  }
  const [stack, browser] = [started.value, launched.value]
  return {
    stack,
    browser,
    gatewayUrl: stack.gateway.url,
    async close () {
      await browser.close()
      await stack.close()
    },
  }
}

export async function openContext (browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ locale: 'en-GB', timezoneId: 'UTC', ...options })
  // Fail in seconds, not Playwright's default 30, when the page does not do what a test waits for.
  context.setDefaultTimeout(10_000)
  onTestFinished(() => context.close())
  return context
}

export async function openPage (browser: Browser, options: BrowserContextOptions = {}): Promise<{ context: BrowserContext, page: Page }> {
  const context = await openContext(browser, options)
  return { context, page: await context.newPage() }
}

export interface IdpLogin {
  /** The identity provider page the browser was sent to. */
  loginPageUrl: string
}

/**
 * On the demo page, signed out: presses "Sign in", types the credentials into
 * the identity provider's login form, submits it and waits until the demo page
 * shows the signed-in view.
 */
export async function signInThroughPage (page: Page, gatewayUrl: string, username: string, password = `${username}-password`): Promise<IdpLogin> {
  await page.locator('#signed-out').waitFor()
  await page.locator('#sign-in').click()
  const loginPageUrl = await typeCredentials(page, gatewayUrl, username, password)
  await page.waitForURL(url => url.origin === new URL(gatewayUrl).origin)
  await page.locator('#signed-in').waitFor()
  return { loginPageUrl }
}

/** Fills in and submits the identity provider's form; resolves with the form page's URL. */
export async function typeCredentials (page: Page, gatewayUrl: string, username: string, password: string): Promise<string> {
  const gatewayOrigin = new URL(gatewayUrl).origin
  await page.waitForURL(url => url.origin !== gatewayOrigin)
  const form = page.locator('form#login-form')
  await form.waitFor()
  const loginPageUrl = page.url()
  await form.locator('input[name="username"]').fill(username)
  await form.locator('input[name="password"]').fill(password)
  await form.locator('button[type="submit"]').click()
  return loginPageUrl
}

export interface ApiResult {
  request: string
  status: number
  body: string
}

/** Presses one of the demo page's API buttons and waits for the result panel to show its answer. */
export async function callFromPage (page: Page, label: string): Promise<ApiResult> {
  const [method, path] = label.split(' ')
  await page.locator(`button.call[data-method="${method}"][data-path="${path}"]`).click()
  await page.locator(`#result[data-request="${label}"][data-status]`).waitFor()
  return {
    request: await page.locator('#result-request').innerText(),
    status: Number(await page.locator('#result').getAttribute('data-status')),
    body: await page.locator('#result-body').innerText(),
  }
}

export async function screenshot (page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true })
  const path = `${ARTIFACTS_DIR}/${name}`
  await page.screenshot({ path, fullPage: true })
  return path
}

export interface StaticSite {
  /** e.g. http://localhost:PORT */
  origin: string
  close (): Promise<void>
}

/**
 * Another site: a plain HTTP server on 127.0.0.1 serving fixed HTML pages,
 * reached by the browser under `hostname` (`localhost` is a different site
 * from the gateway's `127.0.0.1`; `127.0.0.1` on another port is the same
 * site but another origin). Closed when the test file's cleanup runs it.
 */
export async function startStaticSite (pages: Record<string, string>, hostname: string): Promise<StaticSite> {
  const server = createServer((request, response) => {
    const html = pages[new URL(request.url ?? '/', 'http://site.invalid').pathname]
    if (html === undefined) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://${hostname}:${port}`,
    close: () => new Promise<void>(resolve => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}
