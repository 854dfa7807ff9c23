/**
 * The device routes over inject: a signed-in user lists their own sessions and
 * signs out other ones (CSRF token required); another user's session is
 * answered exactly like a missing one, and the current one ends only by logout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAppHarness, type AppHarness, type TestSession } from '../helpers/app-harness.js'

let harness: AppHarness
beforeAll(async () => { harness = await startAppHarness() })
afterAll(async () => { await harness?.close() })

const withSession = (session: TestSession) => ({ cookie: session.cookie, 'x-csrf-token': session.csrfToken })

/** A user of their own per test, so one test's devices never show up in another's list. */
let users = 0
async function devicesOf (count: number): Promise<TestSession[]> {
  const sub = `device-user-${++users}`
  return Promise.all(Array.from({ length: count }, () => harness.signIn({ sub })))
}

describe('GET /bff/sessions', () => {
  it('without a session: 401 unauthenticated', async () => {
    const response = await harness.app.inject({ url: '/bff/sessions' })
    expect(response.statusCode).toBe(401)
    expect(response.json()).toMatchObject({ error: 'unauthenticated' })
  })

  it('lists the user\'s own sessions by public id, marking the current one, never a cookie value', async () => {
    const [current, other] = await devicesOf(2)
    const stranger = await harness.signIn({ sub: 'stranger' })
    const response = await harness.app.inject({ url: '/bff/sessions', headers: { cookie: current!.cookie } })
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const { sessions } = response.json<{ sessions: Array<{ id: string, current: boolean }> }>()
    expect(sessions.map(s => [s.id, s.current]).sort()).toEqual([[current!.handle, true], [other!.handle, false]].sort())
    expect(sessions[0]).toEqual({ id: expect.any(String), current: expect.any(Boolean), createdAt: expect.any(String), lastSeenAt: expect.any(String), ip: '127.0.0.1', userAgent: 'lightMyRequest' })
    expect(response.body).not.toContain(stranger.handle)
    expect(response.body).not.toContain(current!.cookie.split('=')[1])
  })
})

describe('DELETE /bff/sessions/:id', () => {
  it('without the CSRF token: 403 csrf, and the other device stays signed in', async () => {
    const [current, other] = await devicesOf(2)
    const response = await harness.app.inject({ method: 'DELETE', url: `/bff/sessions/${other!.handle}`, headers: { cookie: current!.cookie } })
    expect(response.statusCode).toBe(403)
    expect(response.json()).toMatchObject({ error: 'csrf' })
    expect(await harness.isSignedIn(other!)).toBe(true)
  })

  it('signs out another of the user\'s devices: 200 { revoked: 1 }, that device is signed out, this one is not', async () => {
    const [current, other] = await devicesOf(2)
    const response = await harness.app.inject({ method: 'DELETE', url: `/bff/sessions/${other!.handle}`, headers: withSession(current!) })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ revoked: 1 })
    expect(await harness.isSignedIn(other!)).toBe(false)
    expect(await harness.isSignedIn(current!)).toBe(true)
  })

  it('the current session: 400 invalid_request (that is what logout is for)', async () => {
    const [current] = await devicesOf(1)
    const response = await harness.app.inject({ method: 'DELETE', url: `/bff/sessions/${current!.handle}`, headers: withSession(current!) })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ error: 'invalid_request' })
    expect(await harness.isSignedIn(current!)).toBe(true)
  })

  it('another user\'s session is answered like a missing one (404 not_found), and lives on', async () => {
    const [current] = await devicesOf(1)
    const stranger = await harness.signIn({ sub: 'stranger' })
    for (const id of [stranger.handle, 'no-such-session']) {
      const response = await harness.app.inject({ method: 'DELETE', url: `/bff/sessions/${id}`, headers: withSession(current!) })
      expect(response.statusCode).toBe(404)
      expect(response.json()).toMatchObject({ error: 'not_found' })
    }
    expect(await harness.isSignedIn(stranger)).toBe(true)
  })
})

describe('DELETE /bff/sessions?others=true', () => {
  it('signs out every other device of the user: 200 { revoked: n }, this one stays', async () => {
    const [current, ...others] = await devicesOf(3)
    const stranger = await harness.signIn({ sub: 'stranger' })
    const response = await harness.app.inject({ method: 'DELETE', url: '/bff/sessions?others=true', headers: withSession(current!) })
    expect(response.json()).toEqual({ revoked: 2 })
    for (const other of others) expect(await harness.isSignedIn(other)).toBe(false)
    expect(await harness.isSignedIn(current!)).toBe(true)
    expect(await harness.isSignedIn(stranger)).toBe(true)
  })

  it('without ?others=true: 400 invalid_request, nobody signed out', async () => {
    const [current, other] = await devicesOf(2)
    const response = await harness.app.inject({ method: 'DELETE', url: '/bff/sessions', headers: withSession(current!) })
    expect(response.statusCode).toBe(400)
    expect(response.json()).toMatchObject({ error: 'invalid_request' })
    expect(await harness.isSignedIn(other!)).toBe(true)
  })
})
