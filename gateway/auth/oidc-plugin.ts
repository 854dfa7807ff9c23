/**
 * The identity provider client (openid-client), created once per gateway and
 * shared by the login routes, the token refresher and the revocation paths.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { LoginTokenNeeds } from './login-tokens.js'
import { createOidcClient, type OidcClient } from './oidc-client.js'

declare module 'fastify' {
  interface FastifyInstance {
    oidc: OidcClient
  }
}

async function oidcPlugin (app: FastifyInstance, options: { config: GatewayConfig, loginNeeds: LoginTokenNeeds }) {
  const { config } = options
  // Every API of the route policy is asked for at login: a refresh may only name one the grant holds.
  const resources = options.loginNeeds.audiences
  const client = createOidcClient({ ...config.oidc, redirectUri: config.redirectUri, resources })
  // Tracing (when on): a client span per call to the identity provider made for a request.
  const oidc = app.tracing?.traceIdentityProvider(client, config.oidc.issuer) ?? client
  app.decorate('oidc', oidc)
  app.addHook('onReady', (done) => {
    // Discovery is retried on demand; a down IdP must not stop the gateway from starting.
    oidc.ready().catch((error: unknown) => app.log.error({ err: error }, 'identity provider discovery failed; will retry'))
    done()
  })
}

export default fp(oidcPlugin, { name: 'bff-oidc' })
