/**
 * An OIDC client whose answers a test writes: each method given does what the
 * test says, every other one throws, so a test names exactly the IdP calls it
 * expects. For isolated tests of what the gateway does with the IdP's answers
 * (the refresher); the login routes are tested against the real IdP.
 */
import type { OidcClient } from '../../gateway/auth/oidc-client.js'

export function scriptedOidc (script: Partial<OidcClient>): OidcClient {
  const unscripted = (name: keyof OidcClient) => () => { throw new Error(`${name} was called, but the test did not script it`) }
  return {
    ready: script.ready ?? unscripted('ready'),
    newLoginChallenge: script.newLoginChallenge ?? unscripted('newLoginChallenge'),
    authorizationUrl: script.authorizationUrl ?? unscripted('authorizationUrl'),
    exchangeCode: script.exchangeCode ?? unscripted('exchangeCode'),
    refresh: script.refresh ?? unscripted('refresh'),
    exchangeToken: script.exchangeToken ?? unscripted('exchangeToken'),
    clientCredentials: script.clientCredentials ?? unscripted('clientCredentials'),
    userInfo: script.userInfo ?? unscripted('userInfo'),
    revoke: script.revoke ?? unscripted('revoke'),
    endSessionUrl: script.endSessionUrl ?? unscripted('endSessionUrl'),
    jwksUri: script.jwksUri ?? unscripted('jwksUri'),
  }
}
