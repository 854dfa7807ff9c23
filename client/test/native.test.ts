import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  BffError, createMemorySecureStore, createNativeBffClient, createWebCryptoKeyStore,
  type NativeBffClientOptions, type SecureStore,
} from '../src/native.js'
import { nextEvent, recordEvents } from './fakes/events.js'
import { json, problem } from './fakes/fake-fetch.js'
import { NATIVE_ORIGIN, nativeGateway, REDIRECT_URI } from './fakes/native-gateway.js'

function setup (options: Partial<NativeBffClientOptions> = {}) {
  const gateway = nativeGateway()
  const secureStore = options.secureStore ?? createMemorySecureStore()
  const keyStore = options.keyStore ?? createWebCryptoKeyStore()
  const client = createNativeBffClient({
    baseUrl: NATIVE_ORIGIN,
    redirectUri: REDIRECT_URI,
    openAuthSession: gateway.openAuthSession,
    keyStore,
    secureStore,
    fetch: gateway.fetch,
    ...options,
  })
  return { gateway, client, secureStore, keyStore }
}

/** The app started again on the same device: a new client over the stores it is given. */
function relaunch (gateway: ReturnType<typeof nativeGateway>, stores: Pick<NativeBffClientOptions, 'keyStore' | 'secureStore'>) {
  return createNativeBffClient({
    ...stores,
    baseUrl: NATIVE_ORIGIN,
    redirectUri: REDIRECT_URI,
    openAuthSession: gateway.openAuthSession,
    fetch: gateway.fetch,
  })
}

const storedSession = async (store: SecureStore) => {
  const text = await store.get('bff.session')
  return text ? (JSON.parse(text) as { session: string }).session : undefined
}

describe('login()', () => {
  it('opens /bff/login for a native client with PKCE S256 and a state, and passes the login options', async () => {
    const { gateway, client } = setup()
    await client.login({ prompt: 'login', acrValues: 'urn:mfa', loginHint: 'alice' })
    const [login] = gateway.state.logins
    expect(login!.origin + login!.pathname).toBe(`${NATIVE_ORIGIN}/bff/login`)
    const params = Object.fromEntries(login!.searchParams)
    expect(params).toMatchObject({
      client: 'native',
      redirect_uri: REDIRECT_URI,
      code_challenge_method: 'S256',
      prompt: 'login',
      acr_values: 'urn:mfa',
      login_hint: 'alice',
    })
    expect(params.code_challenge).toMatch(/^[\w-]{43}$/)
    expect(params.state).toMatch(/^[\w-]{43}$/)
  })

  it('redeems the code with its verifier and a DPoP proof, stores the credential and signs in', async () => {
    const { gateway, client, secureStore } = setup({ deviceName: 'Alice\'s phone' })
    const signedIn = nextEvent(client, 'signedIn')
    const user = await client.login()
    expect(user.sub).toBe('alice')
    expect(await signedIn).toEqual({ user, fromOtherTab: false })

    const [redeem] = gateway.to('/bff/native/session')
    const body = JSON.parse(redeem!.body!) as Record<string, string>
    expect(Object.keys(body).sort()).toEqual(['code', 'code_verifier', 'deviceName'])
    expect(body.deviceName).toBe('Alice\'s phone')
    expect(body.code_verifier).toMatch(/^[\w-]{43,128}$/)
    // The verifier is the one behind the challenge the browser carried.
    expect(createHash('sha256').update(body.code_verifier!).digest('base64url')).toBe(gateway.state.logins[0]!.searchParams.get('code_challenge'))
    expect(redeem!.headers.get('content-type')).toBe('application/json')
    expect(gateway.state.proofs[0]!.claims).toMatchObject({ htm: 'POST', htu: `${NATIVE_ORIGIN}/bff/native/session` })

    const credential = await storedSession(secureStore)
    expect(credential).toBeDefined()
    expect(gateway.state.sessions.has(credential!)).toBe(true)
  })

  it('uses a fresh verifier and state for every login', async () => {
    const { gateway, client } = setup()
    await client.login()
    await client.login()
    const [first, second] = gateway.state.logins
    expect(first!.searchParams.get('state')).not.toBe(second!.searchParams.get('state'))
    expect(first!.searchParams.get('code_challenge')).not.toBe(second!.searchParams.get('code_challenge'))
  })

  it('refuses a redirect with another state, redeeming nothing', async () => {
    const { gateway, client, secureStore } = setup()
    gateway.state.browser = (_login, redirectUri) => Promise.resolve(`${redirectUri}?code=stolen&state=someone-elses`)
    const error = await client.login().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(BffError)
    expect(error).toMatchObject({ code: 'state_mismatch' })
    expect(gateway.to('/bff/native/session')).toEqual([])
    expect(await storedSession(secureStore)).toBeUndefined()
  })

  it('refuses a redirect without a state', async () => {
    const { gateway, client } = setup()
    gateway.state.browser = (_login, redirectUri) => Promise.resolve(`${redirectUri}?code=abc`)
    await expect(client.login()).rejects.toMatchObject({ code: 'state_mismatch' })
    expect(gateway.to('/bff/native/session')).toEqual([])
  })

  it('refuses a redirect to another address than redirectUri', async () => {
    const { gateway, client } = setup()
    gateway.state.browser = (login) => Promise.resolve(`com.evil.app:/cb?code=abc&state=${login.searchParams.get('state')}`)
    await expect(client.login()).rejects.toMatchObject({ code: 'invalid_response' })
    expect(gateway.to('/bff/native/session')).toEqual([])
  })

  it('throws the error the gateway redirected with', async () => {
    const { gateway, client } = setup()
    gateway.state.browser = (login, redirectUri) => Promise.resolve(`${redirectUri}?error=account_disabled&state=${login.searchParams.get('state')}`)
    await expect(client.login()).rejects.toMatchObject({ name: 'BffError', code: 'account_disabled', status: 0 })
    expect(gateway.to('/bff/native/session')).toEqual([])
  })

  it('throws login_cancelled when the user closes the browser', async () => {
    for (const closed of [null, undefined, { type: 'cancel' }, { type: 'dismiss' }]) {
      const { gateway, client } = setup()
      gateway.state.browser = () => Promise.resolve(closed)
      await expect(client.login()).rejects.toMatchObject({ code: 'login_cancelled' })
    }
  })

  it('understands expo-web-browser\'s result', async () => {
    const { gateway, client } = setup()
    const signIn = gateway.state.browser
    gateway.state.browser = async (login, redirectUri) => ({ type: 'success', url: await signIn(login, redirectUri) as string })
    expect((await client.login()).sub).toBe('alice')
  })

  it('throws invalid_grant when the gateway refuses the code, storing nothing', async () => {
    const { gateway, client, secureStore } = setup()
    gateway.state.browser = (login, redirectUri) => Promise.resolve(`${redirectUri}?code=expired&state=${login.searchParams.get('state')}`)
    await expect(client.login()).rejects.toMatchObject({ code: 'invalid_grant', status: 400 })
    expect(await storedSession(secureStore)).toBeUndefined()
  })
})

describe('every call', () => {
  it('sends Authorization: Session and a fresh DPoP proof for that request, and no CSRF token or cookie', async () => {
    const { gateway, client } = setup()
    await client.login()
    const credential = [...gateway.state.sessions.keys()][0]
    const proofsBefore = gateway.state.proofs.length
    expect((await client.fetch('/api/orders?page=2#top', { method: 'POST', body: '{}' })).status).toBe(200)
    const [request] = gateway.to('/api/orders')
    expect(request!.headers.get('authorization')).toBe(`Session ${credential}`)
    expect(request!.headers.get('x-csrf-token')).toBeNull()
    expect(request!.credentials).toBe('omit')
    const proof = gateway.state.proofs[proofsBefore]!
    expect(proof.claims).toMatchObject({ htm: 'POST', htu: `${NATIVE_ORIGIN}/api/orders` })
  })

  it('signs every proof with the key the session is bound to, each with its own jti', async () => {
    const { gateway, client } = setup()
    await client.login()
    await client.get('/api/orders')
    await client.get('/api/orders')
    const thumbprints = new Set(gateway.state.proofs.map(proof => proof.thumbprint))
    const ids = new Set(gateway.state.proofs.map(proof => proof.claims.jti))
    expect(thumbprints.size).toBe(1)
    expect(ids.size).toBe(gateway.state.proofs.length)
  })

  it('goes out anonymous without a credential, and user() asks nothing', async () => {
    const { gateway, client } = setup()
    const signedOut = nextEvent(client, 'signedOut')
    expect(await client.user()).toBeNull()
    expect(await signedOut).toEqual({ reason: 'unauthenticated', fromOtherTab: false })
    expect(gateway.to('/bff/user')).toEqual([])
    await client.fetch('/status/')
    expect(gateway.requests[0]!.headers.get('authorization')).toBeNull()
    expect(gateway.requests[0]!.headers.get('dpop')).toBeNull()
  })

  it('forgets the credential on a 401 and announces the sign-out', async () => {
    const { gateway, client, secureStore } = setup()
    await client.login()
    gateway.state.sessions.clear() // revoked by an operator
    const signedOut = nextEvent(client, 'signedOut')
    expect((await client.fetch('/api/orders')).status).toBe(401)
    expect(await signedOut).toEqual({ reason: 'unauthenticated', fromOtherTab: false })
    expect(await storedSession(secureStore)).toBeUndefined()
    const requests = gateway.requests.length
    expect(await client.user()).toBeNull()
    expect(gateway.requests).toHaveLength(requests)
  })

  it('signs out when the key no longer matches the session (401 invalid_dpop_proof)', async () => {
    const secureStore = createMemorySecureStore()
    const { gateway, client } = setup({ secureStore })
    await client.login()
    // The app lost its key (reinstalled, new device from a backup): the stored credential cannot be used.
    const relaunched = relaunch(gateway, { keyStore: createWebCryptoKeyStore(), secureStore })
    const signedOut = nextEvent(relaunched, 'signedOut')
    expect(await relaunched.user()).toBeNull()
    expect(await signedOut).toMatchObject({ reason: 'invalid_dpop_proof' })
    expect(await storedSession(secureStore)).toBeUndefined()
  })

  it('keeps the session on a 401 step_up_required and announces the step-up', async () => {
    const { gateway, client, secureStore } = setup()
    await client.login()
    gateway.state.answers.set('GET /api/payments', () => problem(401, 'step_up_required', { loginUrl: '/bff/login?acr_values=urn%3Amfa' }))
    const signedOut = recordEvents(client, 'signedOut')
    const stepUp = nextEvent(client, 'stepUp')
    await client.fetch('/api/payments')
    expect(await stepUp).toMatchObject({ loginUrl: `${NATIVE_ORIGIN}/bff/login?acr_values=urn%3Amfa`, login: { acrValues: ['urn:mfa'] } })
    expect(signedOut).toEqual([])
    expect(await storedSession(secureStore)).toBeDefined()
  })

  it('picks the stored credential up again after a restart', async () => {
    const secureStore = createMemorySecureStore()
    const keyStore = createWebCryptoKeyStore()
    const { gateway, client } = setup({ secureStore, keyStore })
    await client.login()
    const relaunched = relaunch(gateway, { keyStore, secureStore })
    expect((await relaunched.user())?.sub).toBe('alice')
    expect(gateway.state.logins).toHaveLength(1)
  })

  it('JSON helpers throw the gateway\'s error', async () => {
    const { gateway, client } = setup()
    await client.login()
    gateway.state.answers.set('GET /api/orders', () => problem(403, 'forbidden'))
    await expect(client.get('/api/orders')).rejects.toMatchObject({ status: 403, code: 'forbidden' })
    gateway.state.answers.set('POST /api/orders', async (request) => json(201, JSON.parse(request.body!)))
    expect(await client.post('/api/orders', { item: 'widget' })).toEqual({ item: 'widget' })
  })
})

describe('logout()', () => {
  it('ends the session at the gateway, forgets the credential and announces it', async () => {
    const { gateway, client, secureStore } = setup()
    await client.login()
    const signedOut = nextEvent(client, 'signedOut')
    expect(await client.logout()).toEqual({ logoutUrl: 'https://idp.example.com/session/end' })
    expect(gateway.state.sessions.size).toBe(0)
    expect(gateway.to('/bff/logout')[0]!.headers.get('authorization')).toMatch(/^Session /)
    expect(await storedSession(secureStore)).toBeUndefined()
    expect(await signedOut).toEqual({ reason: 'logout', fromOtherTab: false })
  })

  it('keeps the credential when the gateway could not end the session, so a retry can', async () => {
    const { gateway, client, secureStore } = setup()
    await client.login()
    gateway.state.answers.set('POST /bff/logout', () => problem(503, 'session_store_unavailable'))
    await expect(client.logout()).rejects.toMatchObject({ code: 'session_store_unavailable' })
    expect(await storedSession(secureStore)).toBeDefined()
    expect(client.state.status).toBe('signedIn')
  })

  it('signs out locally without a credential, asking nothing', async () => {
    const { gateway, client } = setup()
    expect(await client.logout()).toEqual({ logoutUrl: null })
    expect(gateway.requests).toEqual([])
    expect(client.state).toEqual({ status: 'signedOut', reason: 'logout' })
  })
})

describe('silentLogin()', () => {
  it('asks with prompt=none and resolves signed in', async () => {
    const { gateway, client } = setup()
    const result = await client.silentLogin()
    expect(gateway.state.logins[0]!.searchParams.get('prompt')).toBe('none')
    expect(result).toMatchObject({ signedIn: true, user: { sub: 'alice' } })
  })

  it('resolves at once, opening nothing, when already signed in', async () => {
    const { gateway, client } = setup()
    await client.login()
    expect(await client.silentLogin()).toMatchObject({ signedIn: true, user: { sub: 'alice' } })
    expect(gateway.state.logins).toHaveLength(1)
  })

  for (const error of ['login_required', 'consent_required', 'interaction_required']) {
    it(`reports ${error} instead of throwing it`, async () => {
      const { gateway, client } = setup()
      gateway.state.browser = (login, redirectUri) => Promise.resolve(`${redirectUri}?error=${error}&state=${login.searchParams.get('state')}`)
      expect(await client.silentLogin()).toEqual({ signedIn: false, error })
    })
  }

  it('still throws on a state mismatch', async () => {
    const { gateway, client } = setup()
    gateway.state.browser = (_login, redirectUri) => Promise.resolve(`${redirectUri}?error=login_required&state=forged`)
    await expect(client.silentLogin()).rejects.toMatchObject({ code: 'state_mismatch' })
  })
})
