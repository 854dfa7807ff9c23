import { afterEach, describe, expect, it } from 'vitest'
import { BffError, createBffClient, type BffClient, type BffClientOptions } from '../src/browser.js'
import { browserGateway, IDP_LOGOUT_URL, ORIGIN, userNamed } from './fakes/browser-gateway.js'
import { nextEvent, recordEvents } from './fakes/events.js'
import { json, problem } from './fakes/fake-fetch.js'
import { fakePage } from './fakes/fake-page.js'

const clients: BffClient[] = []
afterEach(() => { while (clients.length > 0) clients.pop()!.close() })

function setup (options: Partial<BffClientOptions> = {}) {
  const gateway = browserGateway()
  const page = fakePage(`${ORIGIN}/orders/7?tab=items#top`)
  const client = createBffClient({ baseUrl: ORIGIN, fetch: gateway.fetch, window: page.window, channelName: false, ...options })
  clients.push(client)
  return { gateway, page, client }
}

describe('user()', () => {
  it('returns the signed-in user and announces the sign-in once', async () => {
    const { client } = setup()
    const signedIn = recordEvents(client, 'signedIn')
    const user = await client.user()
    expect(user).toMatchObject({ sub: 'alice', csrfToken: 'csrf-1' })
    expect(client.state).toEqual({ status: 'signedIn', user })
    await client.user()
    expect(signedIn).toEqual([{ user, fromOtherTab: false }])
  })

  it('returns null on 401 and announces the sign-out', async () => {
    const { gateway, client } = setup()
    gateway.state.sub = undefined
    const signedOut = nextEvent(client, 'signedOut')
    expect(await client.user()).toBeNull()
    expect(await signedOut).toEqual({ reason: 'unauthenticated', fromOtherTab: false })
    expect(client.state).toEqual({ status: 'signedOut', reason: 'unauthenticated' })
  })

  it('throws the gateway\'s error for anything else and keeps what it knew', async () => {
    const { gateway, client } = setup()
    await client.user()
    gateway.state.answers.set('GET /bff/user', () => problem(503, 'session_store_unavailable'))
    const error = await client.user().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(BffError)
    expect(error).toMatchObject({ status: 503, code: 'session_store_unavailable' })
    expect(client.state.status).toBe('signedIn')
  })

  it('announces a switch to another user', async () => {
    const { gateway, client } = setup()
    await client.user()
    gateway.state.sub = 'bob'
    const signedIn = nextEvent(client, 'signedIn')
    await client.user()
    expect((await signedIn).user.sub).toBe('bob')
  })

  it('shares one request between callers asking at the same time', async () => {
    const { gateway, client } = setup()
    const [first, second] = await Promise.all([client.user(), client.user()])
    expect(first).toBe(second)
    expect(gateway.to('/bff/user')).toHaveLength(1)
  })

  it('returns null for an answer that arrives after the session was seen to end', async () => {
    const { gateway, client } = setup()
    await client.user()
    let answer!: (response: Response) => void
    gateway.state.answers.set('GET /bff/user', () => new Promise(resolve => { answer = resolve }))
    const pending = client.user()
    gateway.state.answers.set('GET /api/orders', () => problem(401, 'unauthenticated'))
    await client.fetch('/api/orders')
    answer(json(200, userNamed('alice', 'csrf-1')))
    expect(await pending).toBeNull()
    expect(client.state.status).toBe('signedOut')
  })
})

describe('fetch()', () => {
  it('calls the gateway\'s origin with the browser\'s cookies', async () => {
    const { gateway, client } = setup()
    const response = await client.fetch('/api/orders?page=2')
    expect(await response.json()).toEqual({ ok: true, path: '/api/orders' })
    expect(gateway.requests[0]).toMatchObject({ method: 'GET', credentials: 'include' })
    expect(gateway.requests[0]!.url.href).toBe(`${ORIGIN}/api/orders?page=2`)
  })

  it('refuses a path that could lead to another host, sending nothing', async () => {
    const { gateway, client } = setup()
    for (const path of ['//evil.example/x', 'https://evil.example/x', '/\\evil.example/x', 'api/orders']) {
      await expect(client.fetch(path, { method: 'POST' })).rejects.toThrow(TypeError)
    }
    expect(gateway.requests).toEqual([])
  })

  it('sends no CSRF token on safe methods', async () => {
    const { gateway, client } = setup()
    await client.user()
    await client.fetch('/api/orders')
    await client.fetch('/api/orders', { method: 'HEAD' })
    expect(gateway.to('/api/orders').map(request => request.headers.get('x-csrf-token'))).toEqual([null, null])
  })

  it('adds X-CSRF-Token from /bff/user to POST, PUT, PATCH and DELETE, fetched once and cached', async () => {
    const { gateway, client } = setup()
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'post']) {
      expect((await client.fetch('/api/orders', { method })).status).toBe(200)
    }
    expect(gateway.to('/api/orders').map(request => request.headers.get('x-csrf-token'))).toEqual(Array(5).fill('csrf-1'))
    expect(gateway.to('/bff/user')).toHaveLength(1)
  })

  it('keeps the caller\'s own headers', async () => {
    const { gateway, client } = setup()
    await client.fetch('/api/orders', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-request-id': 'r1' }, body: 'hi' })
    const [request] = gateway.to('/api/orders')
    expect(request!.headers.get('content-type')).toBe('text/plain')
    expect(request!.headers.get('x-request-id')).toBe('r1')
    expect(request!.body).toBe('hi')
  })

  describe('on 403 csrf', () => {
    it('fetches the token again once and retries once', async () => {
      const { gateway, client } = setup()
      await client.user()
      gateway.state.csrfToken = 'csrf-2' // a new session since (a login in another tab we did not hear from)
      const response = await client.fetch('/api/orders', { method: 'POST', body: 'x' })
      expect(response.status).toBe(200)
      expect(gateway.to('/api/orders').map(request => [request.headers.get('x-csrf-token'), request.body])).toEqual([['csrf-1', 'x'], ['csrf-2', 'x']])
      expect(gateway.to('/bff/user')).toHaveLength(2)
    })

    it('gives up after the one retry and returns the 403', async () => {
      const { gateway, client } = setup()
      gateway.state.answers.set('POST /api/orders', () => problem(403, 'csrf'))
      const response = await client.fetch('/api/orders', { method: 'POST' })
      expect(response.status).toBe(403)
      expect(await response.json()).toMatchObject({ error: 'csrf' })
      expect(gateway.to('/api/orders')).toHaveLength(2)
      expect(gateway.to('/bff/user')).toHaveLength(2)
    })

    it('retries with a token another request already fetched, without asking again', async () => {
      const { gateway, client } = setup()
      await client.user()
      gateway.state.csrfToken = 'csrf-2'
      const responses = await Promise.all([
        client.fetch('/api/orders', { method: 'POST' }),
        client.fetch('/api/orders', { method: 'DELETE' }),
      ])
      expect(responses.map(response => response.status)).toEqual([200, 200])
      expect(gateway.to('/bff/user')).toHaveLength(2)
    })

    it('does not retry a 403 for another reason', async () => {
      const { gateway, client } = setup()
      gateway.state.answers.set('DELETE /api/admin/users/1', () => problem(403, 'forbidden'))
      const response = await client.fetch('/api/admin/users/1', { method: 'DELETE' })
      expect(response.status).toBe(403)
      expect(gateway.to('/api/admin/users/1')).toHaveLength(1)
    })

    it('does not retry a safe request', async () => {
      const { gateway, client } = setup()
      gateway.state.answers.set('GET /api/orders', () => problem(403, 'csrf'))
      expect((await client.fetch('/api/orders')).status).toBe(403)
      expect(gateway.to('/api/orders')).toHaveLength(1)
      expect(gateway.to('/bff/user')).toHaveLength(0)
    })
  })

  it('turns 401s into one signedOut event and returns them', async () => {
    const { gateway, client } = setup()
    await client.user()
    const signedOut = recordEvents(client, 'signedOut')
    gateway.state.answers.set('GET /api/orders', () => problem(401, 'session_expired'))
    const responses = await Promise.all([client.fetch('/api/orders'), client.fetch('/api/orders')])
    expect(responses.map(response => response.status)).toEqual([401, 401])
    expect(signedOut).toEqual([{ reason: 'session_expired', fromOtherTab: false }])
    expect(client.state).toEqual({ status: 'signedOut', reason: 'session_expired' })
  })

  it('turns a 401 step_up_required into a stepUp event, still signed in', async () => {
    const { gateway, client } = setup()
    await client.user()
    const signedOut = recordEvents(client, 'signedOut')
    gateway.state.answers.set('GET /api/payments', () => problem(401, 'step_up_required', {
      loginUrl: '/bff/login?returnTo=%2Fpayments&acr_values=urn%3Amfa%20urn%3Ahigh&max_age=300',
    }))
    const stepUp = nextEvent(client, 'stepUp')
    expect((await client.fetch('/api/payments')).status).toBe(401)
    expect(await stepUp).toEqual({
      loginUrl: `${ORIGIN}/bff/login?returnTo=%2Fpayments&acr_values=urn%3Amfa%20urn%3Ahigh&max_age=300`,
      message: 'step_up_required (test)',
      login: { acrValues: ['urn:mfa', 'urn:high'], maxAge: 300 },
    })
    expect(signedOut).toEqual([])
    expect(client.state.status).toBe('signedIn')
  })
})

describe('JSON helpers', () => {
  it('send JSON with the CSRF token and parse the answer', async () => {
    const { gateway, client } = setup()
    gateway.state.answers.set('POST /api/orders', async (request) =>
      request.headers.get('x-csrf-token') === 'csrf-1' ? json(201, { received: JSON.parse(request.body!) }) : problem(403, 'csrf'))
    expect(await client.post('/api/orders', { item: 'widget', quantity: 2 })).toEqual({ received: { item: 'widget', quantity: 2 } })
    const [request] = gateway.to('/api/orders')
    expect(request!.headers.get('content-type')).toBe('application/json')
    expect(request!.headers.get('accept')).toBe('application/json')
  })

  it('get, put, patch and delete use their methods', async () => {
    const { gateway, client } = setup()
    await client.get('/api/a')
    await client.put('/api/b', { x: 1 })
    await client.patch('/api/c', { x: 2 })
    await client.delete('/api/d')
    expect(gateway.requests.filter(request => request.url.pathname.startsWith('/api/')).map(request => `${request.method} ${request.url.pathname} ${request.body ?? ''}`))
      .toEqual(['GET /api/a ', 'PUT /api/b {"x":1}', 'PATCH /api/c {"x":2}', 'DELETE /api/d '])
  })

  it('resolve an empty answer to undefined', async () => {
    const { gateway, client } = setup()
    gateway.state.answers.set('DELETE /api/orders/1', () => new Response(null, { status: 204 }))
    expect(await client.delete('/api/orders/1')).toBeUndefined()
  })

  it('throw BffError with the gateway\'s status, code and message', async () => {
    const { gateway, client } = setup()
    gateway.state.answers.set('GET /api/orders', () => problem(502, 'bad_gateway'))
    await expect(client.get('/api/orders')).rejects.toMatchObject({ name: 'BffError', status: 502, code: 'bad_gateway', message: 'bad_gateway (test)' })
  })

  it('throw invalid_response for a 2xx body that is not JSON', async () => {
    const { gateway, client } = setup()
    gateway.state.answers.set('GET /api/orders', () => new Response('<html>', { status: 200 }))
    await expect(client.get('/api/orders')).rejects.toMatchObject({ code: 'invalid_response', status: 200 })
  })
})

describe('login()', () => {
  it('leaves for /bff/login, coming back to the current page by default', () => {
    const { page, client } = setup()
    client.login()
    expect(page.navigations).toEqual([`${ORIGIN}/bff/login?returnTo=${encodeURIComponent('/orders/7?tab=items#top')}`])
  })

  it('passes returnTo and the login options', () => {
    const { page, client } = setup()
    client.login({ returnTo: '/settings', prompt: 'login', maxAge: 0, acrValues: ['urn:mfa'], loginHint: 'alice@example.com', uiLocales: ['de', 'en'] })
    const url = new URL(page.navigations[0]!)
    expect(url.origin + url.pathname).toBe(`${ORIGIN}/bff/login`)
    expect(Object.fromEntries(url.searchParams)).toEqual({
      returnTo: '/settings', prompt: 'login', max_age: '0', acr_values: 'urn:mfa', login_hint: 'alice@example.com', ui_locales: 'de en',
    })
  })

  it('gives the same URL for a link', () => {
    const { client } = setup()
    expect(client.loginUrl({ returnTo: '/' })).toBe(`${ORIGIN}/bff/login?returnTo=%2F`)
  })
})

describe('logout()', () => {
  it('posts with the CSRF token, returns the IdP\'s logout URL and announces the sign-out', async () => {
    const { gateway, client } = setup()
    await client.user()
    const signedOut = nextEvent(client, 'signedOut')
    expect(await client.logout()).toEqual({ logoutUrl: IDP_LOGOUT_URL })
    expect(gateway.to('/bff/logout')[0]!.headers.get('x-csrf-token')).toBe('csrf-1')
    expect(await signedOut).toEqual({ reason: 'logout', fromOtherTab: false })
    expect(client.state).toEqual({ status: 'signedOut', reason: 'logout' })
  })

  it('counts a session that had already ended as signed out', async () => {
    const { gateway, client } = setup()
    await client.user()
    gateway.state.sub = undefined
    expect(await client.logout()).toEqual({ logoutUrl: null })
    expect(client.state).toEqual({ status: 'signedOut', reason: 'logout' })
  })

  it('throws when the gateway could not end the session, and stays signed in', async () => {
    const { gateway, client } = setup()
    await client.user()
    gateway.state.answers.set('POST /bff/logout', () => problem(503, 'session_store_unavailable'))
    await expect(client.logout()).rejects.toMatchObject({ code: 'session_store_unavailable' })
    expect(client.state.status).toBe('signedIn')
  })
})

describe('silentLogin()', () => {
  it('leaves for /bff/login with prompt=none, marking returnTo, and never settles on that page', async () => {
    const { gateway, page, client } = setup()
    gateway.state.sub = undefined
    let settled = false
    client.silentLogin().finally(() => { settled = true }).catch(() => {})
    await new Promise(resolve => setImmediate(resolve))
    expect(settled).toBe(false)
    const url = new URL(page.navigations[0]!)
    expect(url.searchParams.get('prompt')).toBe('none')
    expect(url.searchParams.get('returnTo')).toBe('/orders/7?tab=items&bff_silent=1#top')
  })

  for (const error of ['login_required', 'consent_required', 'interaction_required']) {
    it(`reports ${error} from the error the gateway added, and cleans the address bar`, async () => {
      const { gateway, page, client } = setup()
      gateway.state.sub = undefined
      page.href = `${ORIGIN}/orders/7?tab=items&bff_silent=1&error=${error}#top`
      expect(await client.silentLogin()).toEqual({ signedIn: false, error })
      expect(page.href).toBe(`${ORIGIN}/orders/7?tab=items#top`)
      expect(page.navigations).toEqual([])
    })
  }

  it('resolves signed in when the IdP still had a session', async () => {
    const { page, client } = setup()
    page.href = `${ORIGIN}/?bff_silent=1`
    const result = await client.silentLogin()
    expect(result).toEqual({ signedIn: true, user: userNamed('alice', 'csrf-1') })
    expect(page.href).toBe(`${ORIGIN}/`)
  })

  it('resolves at once, staying on the page, when the gateway already has a session', async () => {
    const { page, client } = setup()
    expect(await client.silentLogin()).toMatchObject({ signedIn: true, user: { sub: 'alice' } })
    expect(page.navigations).toEqual([])
  })

  it('trusts the session, not the query: a crafted error does not sign out a signed-in user', async () => {
    const { page, client } = setup()
    page.href = `${ORIGIN}/?bff_silent=1&error=login_required`
    expect(await client.silentLogin()).toMatchObject({ signedIn: true })
  })
})

describe('across tabs (BroadcastChannel)', () => {
  const channelName = () => `bff-test-${Math.random()}`

  function twoTabs () {
    const name = channelName()
    const gateway = browserGateway()
    const tab = (path: string) => {
      const client = createBffClient({ baseUrl: ORIGIN, fetch: gateway.fetch, window: fakePage(ORIGIN + path).window, channelName: name })
      clients.push(client)
      return client
    }
    return { gateway, name, first: tab('/a'), second: tab('/b') }
  }

  it('a sign-out in one tab reaches the other at once', async () => {
    const { first, second } = twoTabs()
    await Promise.all([first.user(), second.user()])
    const signedOut = nextEvent(second, 'signedOut')
    await first.logout()
    expect(await signedOut).toEqual({ reason: 'logout', fromOtherTab: true })
    expect(second.state).toEqual({ status: 'signedOut', reason: 'logout' })
  })

  it('a sign-in in one tab reaches the other with the user and its CSRF token', async () => {
    const { gateway, first, second } = twoTabs()
    gateway.state.sub = undefined
    await Promise.all([first.user(), second.user()])
    gateway.state.sub = 'alice'
    gateway.state.csrfToken = 'csrf-new'
    const signedIn = nextEvent(second, 'signedIn')
    await first.user()
    expect(await signedIn).toEqual({ user: userNamed('alice', 'csrf-new'), fromOtherTab: true })
    const userCalls = gateway.to('/bff/user').length
    expect((await second.fetch('/api/orders', { method: 'POST' })).status).toBe(200)
    expect(gateway.to('/bff/user')).toHaveLength(userCalls)
  })

  it('a 401 seen by one tab signs the other out too', async () => {
    const { gateway, first, second } = twoTabs()
    await Promise.all([first.user(), second.user()])
    gateway.state.answers.set('GET /api/orders', () => problem(401, 'session_expired'))
    const signedOut = nextEvent(second, 'signedOut')
    await first.fetch('/api/orders')
    expect(await signedOut).toEqual({ reason: 'session_expired', fromOtherTab: true })
  })

  it('posts only its own news: nothing echoes back', async () => {
    const { gateway, name, first, second } = twoTabs()
    await Promise.all([first.user(), second.user()])
    const observer = new BroadcastChannel(name)
    const seen: Array<{ type: string }> = []
    const secondSignedInAgain = new Promise<void>(resolve => {
      observer.onmessage = (event: MessageEvent<{ type: string }>) => {
        seen.push(event.data)
        if (seen.length === 2) resolve()
      }
    })
    try {
      const secondSignedOut = nextEvent(second, 'signedOut')
      await first.logout()
      await secondSignedOut
      // The second tab's next post comes after any echo it might have sent: the channel keeps one sender's order.
      gateway.state.csrfToken = 'csrf-2' // signed in again: a new session
      gateway.state.sub = 'alice'
      await second.user()
      await secondSignedInAgain
      expect(seen.map(message => message.type)).toEqual(['signedOut', 'signedIn'])
    } finally {
      observer.close()
    }
  })

  it('ignores news of a session that has ended: a message or an answer from before the sign-out', async () => {
    const { name, first } = twoTabs()
    await first.user()
    await first.logout()
    const signedIn = recordEvents(first, 'signedIn')
    const otherTab = new BroadcastChannel(name)
    try {
      const reached = nextEvent(first, 'signedIn')
      otherTab.postMessage({ type: 'signedIn', user: userNamed('alice', 'csrf-1') })
      otherTab.postMessage({ type: 'signedIn', user: userNamed('alice', 'csrf-2') })
      await reached
      expect(signedIn.map(event => event.user.csrfToken)).toEqual(['csrf-2'])
    } finally {
      otherTab.close()
    }
  })

  it('tabs on another channel, or with sharing off, hear nothing', async () => {
    const gateway = browserGateway()
    const elsewhere = createBffClient({ baseUrl: ORIGIN, fetch: gateway.fetch, window: fakePage(ORIGIN).window, channelName: channelName() })
    const isolated = createBffClient({ baseUrl: ORIGIN, fetch: gateway.fetch, window: fakePage(ORIGIN).window, channelName: false })
    clients.push(elsewhere, isolated)
    const { first, second } = twoTabs()
    await Promise.all([first.user(), second.user(), elsewhere.user(), isolated.user()])
    const heard = [...recordEvents(elsewhere, 'signedOut'), ...recordEvents(isolated, 'signedOut')]
    const reached = nextEvent(second, 'signedOut')
    await first.logout()
    await reached
    expect(heard).toEqual([])
    expect(elsewhere.state.status).toBe('signedIn')
  })
})

describe('createBffClient()', () => {
  it('defaults baseUrl to the page\'s origin', async () => {
    const gateway = browserGateway()
    const client = createBffClient({ fetch: gateway.fetch, window: fakePage('https://spa.example.org/x').window, channelName: false })
    clients.push(client)
    await client.fetch('/bff/user')
    expect(gateway.requests[0]!.url.origin).toBe('https://spa.example.org')
  })

  it('refuses a baseUrl that is not an origin', () => {
    for (const baseUrl of ['app.example.com', 'https://app.example.com/prefix', 'ftp://app.example.com', 'https://user@app.example.com']) {
      expect(() => createBffClient({ baseUrl, channelName: false, window: fakePage(ORIGIN).window })).toThrow(TypeError)
    }
    expect(() => createBffClient({ baseUrl: `${ORIGIN}/`, channelName: false, window: fakePage(ORIGIN).window }).close()).not.toThrow()
  })
})
