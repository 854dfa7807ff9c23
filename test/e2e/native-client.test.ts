/**
 * The client library's native half (`createNativeBffClient`) driven from
 * Node, on a real gateway, with Chromium as the system browser: the person
 * types the password into the identity provider's own form, the gateway
 * sends the browser to the app's redirect URI, and the app (this test) takes
 * the handoff code from there. The device key is the library's WebCrypto key
 * store (non-extractable P-256), the credential in its memory store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { decodeProtectedHeader } from 'jose'
import { createMemorySecureStore, createNativeBffClient, createWebCryptoKeyStore, type NativeBffClient, type SecureStore } from '../../client/src/native.js'
import type { WebCryptoKeyStore } from '../../client/src/webcrypto-key-store.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { APP_REDIRECT_URI } from '../helpers/native-app.js'
import { launchChromium, openContext, typeCredentials } from './chromium.js'
import { chromiumAuthSession } from './system-browser.js'

const CLAIMED_HTTPS_REDIRECT = 'https://app.example.com/native/done'
const CREDENTIAL_KEY = 'bff.session'

let stack: Stack
let browser: Browser
beforeAll(async () => {
  ;[stack, browser] = await Promise.all([
    startStack({ gatewayEnv: { NATIVE_REDIRECT_URIS: `${APP_REDIRECT_URI},${CLAIMED_HTTPS_REDIRECT}` } }),
    launchChromium(),
  ])
})
afterAll(async () => {
  await browser?.close()
  await stack?.close()
})

interface SentRequest { method: string, path: string, headers: Headers }

interface App {
  client: NativeBffClient
  keyStore: WebCryptoKeyStore
  secureStore: SecureStore
  /** What the app sent to the gateway. */
  sent: SentRequest[]
}

/** An app on this machine: its own key and secure store; the system browser signs in as `username`. */
async function nativeApp (redirectUri: string, username: string, keyStore = createWebCryptoKeyStore(), secureStore = createMemorySecureStore()): Promise<App> {
  const systemBrowser = await openContext(browser)
  const sent: SentRequest[] = []
  const client = createNativeBffClient({
    baseUrl: stack.publicUrl,
    redirectUri,
    openAuthSession: chromiumAuthSession(systemBrowser, async page => { await typeCredentials(page, stack.publicUrl, username, `${username}-password`) }),
    keyStore,
    secureStore,
    storageKey: CREDENTIAL_KEY,
    deviceName: 'Test phone',
    fetch: (input, init) => {
      const url = new URL(String(input))
      sent.push({ method: init?.method ?? 'GET', path: url.pathname, headers: new Headers(init?.headers) })
      return fetch(input, init)
    },
  })
  return { client, keyStore, secureStore, sent }
}

describe.each([
  ['a private-use scheme', APP_REDIRECT_URI],
  ['a claimed https URL', CLAIMED_HTTPS_REDIRECT],
])('createNativeBffClient with Chromium as the system browser, redirect URI %s', (_, redirectUri) => {
  it('signs in, calls the API with the bound credential, lists its device, logs out', async () => {
    const { client, keyStore, secureStore, sent } = await nativeApp(redirectUri, 'alice')
    const user = await client.login()
    expect(user).toMatchObject({ sub: 'alice', roles: ['user'] })
    expect(client.state.status).toBe('signedIn')
    // The private key never leaves the key store; every proof names its public half.
    expect((await keyStore.keyPair()).privateKey.extractable).toBe(false)
    const publicJwk = await keyStore.publicJwk()
    const redeemed = sent.find(r => r.path === '/bff/native/session')!
    expect(decodeProtectedHeader(redeemed.headers.get('dpop')!)).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk })

    stack.api.clear()
    expect(await client.get('/api/orders')).toMatchObject({ user: 'alice' })
    expect(await client.post('/api/orders', { item: 'Blue widget', quantity: 2 })).toMatchObject({ order: { item: 'Blue widget', quantity: 2 } })
    for (const request of sent.filter(r => r.path === '/api/orders')) {
      expect(request.headers.get('authorization')).toMatch(/^Session \S+$/)
      expect(decodeProtectedHeader(request.headers.get('dpop')!).jwk).toEqual(publicJwk)
    }
    // The API sees the gateway's access token, never the app's credential or proof.
    expect(stack.api.received.map(r => `${r.method} ${r.url}`)).toEqual(['GET /orders', 'POST /orders'])
    for (const request of stack.api.received) {
      expect(request.headers.authorization).toMatch(/^Bearer eyJ/)
      expect(request.headers.dpop).toBeUndefined()
    }

    const { sessions } = await client.get<{ sessions: Array<{ id: string, current: boolean, userAgent: string }> }>('/bff/sessions')
    expect(sessions.filter(s => s.current).map(s => s.userAgent)).toEqual(['Test phone'])

    // The credential alone is worthless: another key cannot use it.
    const stored = (await secureStore.get(CREDENTIAL_KEY))!
    const thief = await nativeApp(redirectUri, 'alice', createWebCryptoKeyStore(), createMemorySecureStore())
    await thief.secureStore.set(CREDENTIAL_KEY, stored)
    await expect(thief.client.get('/api/orders')).rejects.toMatchObject({ status: 401, code: 'invalid_dpop_proof' })

    const { logoutUrl } = await client.logout()
    expect(logoutUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//)
    expect(client.state).toEqual({ status: 'signedOut', reason: 'logout' })
    expect(await secureStore.get(CREDENTIAL_KEY)).toBeNull()
    expect(await client.user()).toBeNull()
    // Ended at the gateway, not only forgotten: the same key with the old credential is refused.
    const sameDevice = await nativeApp(redirectUri, 'alice', keyStore, createMemorySecureStore())
    await sameDevice.secureStore.set(CREDENTIAL_KEY, stored)
    expect(await sameDevice.client.user()).toBeNull()
    expect(sameDevice.sent.map(r => `${r.method} ${r.path}`)).toEqual(['GET /bff/user'])
  })
})
