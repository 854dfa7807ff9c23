/**
 * The mock IdP's logins for real-time authorization (issue 18): acr values
 * (password and MFA) chosen by `acr_values`, step-up, `auth_time` and
 * `max_age`, silent `prompt=none`, and users an administrator disables.
 */
import { decodeJwt } from 'jose'
import * as client from 'openid-client'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ACR_MFA, ACR_PASSWORD, startIdentityProvider } from '../../upstream-mock/idp.js'
import type { IdentityProvider } from '../../upstream-mock/idp.js'
import { HttpBrowser } from '../helpers/http-browser.js'
import { LoginFlowError, findLoginForm, parseForms, submitCredentials } from '../helpers/login-flow.js'
import { MockRelyingParty, RP_REDIRECT_URI } from '../helpers/mock-relying-party.js'

const SECRET = 'mock-test-client-secret-0123456789abcdef'
const MFA_CODE = '654321'
const ALICE = { username: 'alice', password: 'alice-password' }
const BOB = { username: 'bob', password: 'bob-password' }

/** Resolves once the clock has moved past `epochSecond`. */
async function nextSecond (epochSecond: number): Promise<void> {
  const wait = (epochSecond + 1) * 1000 - Date.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait + 5))
}

describe('upstream mock: logins, step-up, disabled users', () => {
  let idp: IdentityProvider
  let rp: MockRelyingParty

  beforeAll(async () => {
    idp = await startIdentityProvider({
      acr: { mfaCode: MFA_CODE },
      clients: [{ clientId: 'gateway', clientSecret: SECRET, redirectUris: [RP_REDIRECT_URI] }],
    })
    rp = await MockRelyingParty.discover(idp, 'gateway', client.ClientSecretBasic(SECRET))
  })

  afterAll(async () => {
    await idp?.close()
  })

  beforeEach(() => {
    idp.enableUser('alice')
  })

  describe('acr values', () => {
    it('advertises them and gives a password login urn:mock:pwd', async () => {
      expect(rp.config.serverMetadata().acr_values_supported).toEqual([ACR_PASSWORD, ACR_MFA])
      expect(idp.mfaCode).toBe(MFA_CODE)
      const { tokens } = await rp.signIn(ALICE)
      expect(tokens.claims()).toMatchObject({ sub: 'alice', acr: ACR_PASSWORD, amr: ['pwd'] })
    })

    it('asks for the one-time code when acr_values asks for MFA, and refuses a wrong one', async () => {
      const browser = new HttpBrowser()
      const request = await rp.authorizationRequest({ params: { acr_values: ACR_MFA } })
      const { page } = await rp.follow(browser, request.url)
      const form = findLoginForm(page)
      expect(form?.fields).toHaveProperty('otp')
      const wrong = await submitCredentials(browser, page, RP_REDIRECT_URI, { ...ALICE, oneTimeCode: '000000' })
      expect(wrong.callbackUrl).toBeUndefined()
      expect(wrong.response.status).toBe(401)
      expect(wrong.response.body).toContain('Invalid one-time code')

      const right = await submitCredentials(browser, wrong.response, RP_REDIRECT_URI, { ...ALICE, oneTimeCode: MFA_CODE })
      const tokens = await client.authorizationCodeGrant(rp.config, new URL(right.callbackUrl as string), request.checks)
      expect(tokens.claims()).toMatchObject({ sub: 'alice', acr: ACR_MFA, amr: ['pwd', 'otp'] })
    })

    it('takes the first supported value of acr_values, in order of preference', async () => {
      const { tokens, idpStep } = await rp.signIn(ALICE, { params: { acr_values: `urn:other ${ACR_PASSWORD} ${ACR_MFA}` } })
      expect(idpStep.askedForCredentials).toBe(true)
      expect(tokens.claims()?.acr).toBe(ACR_PASSWORD)
    })

    it('steps a password session up to MFA, then keeps it silent while MFA is enough', async () => {
      const { browser } = await rp.signIn(ALICE)
      await expect(rp.signIn(ALICE, { browser, params: { acr_values: ACR_MFA } })).rejects.toThrow(LoginFlowError)

      const stepUp = await rp.authorizationRequest({ params: { acr_values: ACR_MFA } })
      const { page } = await rp.follow(browser, stepUp.url)
      // The same user again, as the login page presumes.
      expect(findLoginForm(page)?.fields.username).toBe('alice')
      const done = await submitCredentials(browser, page, RP_REDIRECT_URI, { ...ALICE, oneTimeCode: MFA_CODE })
      const stepped = await client.authorizationCodeGrant(rp.config, new URL(done.callbackUrl as string), stepUp.checks)
      expect(stepped.claims()?.acr).toBe(ACR_MFA)

      const again = await rp.signIn(ALICE, { browser, params: { acr_values: ACR_MFA } })
      expect(again.idpStep.askedForCredentials).toBe(false)
      expect(again.tokens.claims()?.acr).toBe(ACR_MFA)
    })

    it('lets another user take over at a step-up', async () => {
      const { browser } = await rp.signIn(ALICE)
      const { tokens } = await rp.signIn({ ...BOB, oneTimeCode: MFA_CODE }, { browser, params: { acr_values: ACR_MFA } })
      expect(tokens.claims()).toMatchObject({ sub: 'bob', acr: ACR_MFA })
    })

    it('answers prompt=none with login_required when the session lacks the acr', async () => {
      const { browser } = await rp.signIn(ALICE)
      const request = await rp.authorizationRequest({ params: { acr_values: ACR_MFA, prompt: 'none' } })
      const { callbackUrl } = await rp.follow(browser, request.url)
      expect(callbackUrl?.searchParams.get('error')).toBe('login_required')
    })

    it('keeps the acr across refreshes', async () => {
      const { tokens } = await rp.signIn({ ...ALICE, oneTimeCode: MFA_CODE }, { params: { acr_values: ACR_MFA } })
      const refreshed = await client.refreshTokenGrant(rp.config, tokens.refresh_token as string)
      expect(refreshed.claims()).toMatchObject({ acr: ACR_MFA, amr: ['pwd', 'otp'], auth_time: tokens.claims()?.auth_time })
    })
  })

  describe('auth_time and max_age', () => {
    it('puts auth_time in every ID token, and keeps a login younger than max_age', async () => {
      const before = Math.floor(Date.now() / 1000)
      const { tokens, browser } = await rp.signIn(ALICE)
      const authTime = tokens.claims()?.auth_time
      expect(authTime).toBeGreaterThanOrEqual(before)
      const { tokens: aged, idpStep } = await rp.signIn(ALICE, { browser, params: { max_age: '3600' } })
      expect(idpStep.askedForCredentials).toBe(false)
      expect(aged.claims()?.auth_time).toBe(authTime)
    })

    it('asks for credentials again once the login is older than max_age', async () => {
      const { browser, tokens } = await rp.signIn(ALICE)
      const firstAuthTime = tokens.claims()?.auth_time as number
      await nextSecond(firstAuthTime)
      const { tokens: fresh, idpStep } = await rp.signIn(ALICE, { browser, params: { max_age: '0' } })
      expect(idpStep.askedForCredentials).toBe(true)
      expect(fresh.claims()?.auth_time).toBeGreaterThan(firstAuthTime)
    })
  })

  describe('prompt=none', () => {
    it('returns a code silently with an IdP session', async () => {
      const { browser } = await rp.signIn(ALICE)
      const request = await rp.authorizationRequest({ params: { prompt: 'none' } })
      const { callbackUrl } = await rp.follow(browser, request.url)
      expect(callbackUrl?.searchParams.get('code')).toBeTruthy()
      const tokens = await client.authorizationCodeGrant(rp.config, callbackUrl as URL, request.checks)
      expect(tokens.claims()?.sub).toBe('alice')
    })

    it('redirects with error=login_required and the state without one', async () => {
      const request = await rp.authorizationRequest({ params: { prompt: 'none' } })
      const { callbackUrl } = await rp.follow(new HttpBrowser(), request.url)
      expect(`${callbackUrl?.origin}${callbackUrl?.pathname}`).toBe(RP_REDIRECT_URI)
      expect(callbackUrl?.searchParams.get('error')).toBe('login_required')
      expect(callbackUrl?.searchParams.get('state')).toBe(request.checks.expectedState)
    })
  })

  describe('disabled users', () => {
    it('ends their IdP sessions, refuses their refreshes and logins, and lets them back when enabled', async () => {
      const { browser, tokens } = await rp.signIn(ALICE)
      const refreshToken = tokens.refresh_token as string
      expect(idp.disableUser('alice')).toBeGreaterThanOrEqual(1)
      expect(idp.isUserDisabled('alice')).toBe(true)

      await expect(client.refreshTokenGrant(rp.config, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' })

      const silent = await rp.authorizationRequest({ params: { prompt: 'none' } })
      expect((await rp.follow(browser, silent.url)).callbackUrl?.searchParams.get('error')).toBe('login_required')

      const request = await rp.authorizationRequest()
      const { page } = await rp.follow(browser, request.url)
      const refused = await submitCredentials(browser, page, RP_REDIRECT_URI, ALICE)
      expect(refused.callbackUrl).toBeUndefined()
      expect(refused.response.status).toBe(403)
      expect(refused.response.body).toContain('This account is disabled')
      expect(parseForms(refused.response.body, refused.response.url)).toHaveLength(1)

      idp.enableUser('alice')
      expect(idp.isUserDisabled('alice')).toBe(false)
      // The refused refresh did not rotate the token: the grant is intact.
      const refreshed = await client.refreshTokenGrant(rp.config, refreshToken)
      expect(decodeJwt(refreshed.access_token).sub).toBe('alice')
      expect((await rp.signIn(ALICE)).tokens.claims()?.sub).toBe('alice')
    })
  })

  it('reports no server errors', () => {
    expect(idp.serverErrors).toEqual([])
  })
})
