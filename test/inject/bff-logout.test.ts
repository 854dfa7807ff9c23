/**
 * POST /bff/logout over inject: only with the session's CSRF token; it ends the
 * session, clears the cookie, and answers with the IdP's end-session URL (which
 * carries no token).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, HARNESS_PUBLIC_URL, type AppHarness } from '../helpers/app-harness.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

const logout = (headers: Record<string, string>) => harness.app.inject({ method: 'POST', url: '/bff/logout', headers })

describe('POST /bff/logout', () => {
  it('without the CSRF header: 403 csrf, and the session lives on', async () => {
    const session = await harness.signIn()
    const response = await logout({ cookie: session.cookie })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toEqual({ error: 'csrf', message: expect.any(String) })
    expect(await harness.isSignedIn(session)).toBe(true)
  })

  it('with it: 200 { logoutUrl } at the IdP, the cookie cleared, the session ended', async () => {
    const session = await harness.signIn()
    const response = await logout({ cookie: session.cookie, 'x-csrf-token': session.csrfToken })
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')

    const { logoutUrl } = response.json<{ logoutUrl: string }>()
    const url = new URL(logoutUrl)
    expect(`${url.origin}${url.pathname}`).toBe(harness.idp!.provider.urlFor('end_session'))
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(`${HARNESS_PUBLIC_URL}/`)
    expect(url.searchParams.has('id_token_hint')).toBe(false)

    const cleared = response.cookies.find(c => c.name === harness.sessionCookieName)
    expect(cleared?.value).toBe('')
    expect(cleared?.expires?.getTime()).toBeLessThanOrEqual(Date.now())
    expect(await harness.isSignedIn(session)).toBe(false)
    expect(await harness.app.sessions.listByUser('alice')).not.toContainEqual(expect.objectContaining({ handle: session.handle }))
  })

  it.each<Record<string, string>>([{}, { 'x-csrf-token': 'anything' }])('without a session (headers %j): 401 unauthenticated', async (headers) => {
    const response = await logout(headers)
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'unauthenticated' })
  })
})
