/**
 * `npm run demo`: the identity provider, the API and the gateway together,
 * ready to use in a browser. Zero setup: the in-memory session store unless
 * REDIS_URL is set.
 */
import { fileURLToPath } from 'node:url'
import { startUpstreamMock } from '../upstream-mock/main.js'
import { loadConfig } from '../gateway/config.js'
import { loadRoutePolicy } from '../gateway/proxy/route-policy.js'
import { buildApp } from '../gateway/app.js'
import { buildDemoClient } from './demo-client.js'

const port = Number(process.env.PORT ?? 3000)
const publicUrl = process.env.PUBLIC_URL ?? `http://localhost:${port}`
const idpPort = process.env.IDP_PORT ?? '4000'
const apiPort = process.env.API_PORT ?? '4001'
const clientSecret = 'demo-gateway-secret-change-me-0123456789'
const apiAudience = `http://127.0.0.1:${apiPort}`

// The pages load the client library from demo/vendor/, bundled from client/src.
await buildDemoClient()

const mock = await startUpstreamMock({
  IDP_PORT: idpPort,
  API_PORT: apiPort,
  API_AUDIENCE: apiAudience,
  GATEWAY_PUBLIC_URL: publicUrl,
  GATEWAY_CLIENT_ID: 'bff-gateway',
  GATEWAY_CLIENT_SECRET: clientSecret,
  ...(process.env.ACCESS_TOKEN_TTL ? { ACCESS_TOKEN_TTL: process.env.ACCESS_TOKEN_TTL } : {}),
})

const config = loadConfig({
  PUBLIC_URL: publicUrl,
  PORT: String(port),
  ADMIN_PORT: process.env.ADMIN_PORT ?? '3001',
  ADMIN_TOKEN: process.env.ADMIN_TOKEN ?? 'demo-admin-token-change-me-0123456789abcdef',
  SESSION_SECRET: process.env.SESSION_SECRET ?? 'demo-session-secret-change-me-0123456789abcdef',
  OIDC_ISSUER: mock.idp.issuer,
  OIDC_CLIENT_ID: 'bff-gateway',
  OIDC_CLIENT_SECRET: clientSecret,
  OIDC_AUTH_PARAMS: JSON.stringify({ resource: apiAudience }),
  ROUTES_FILE: fileURLToPath(new URL('../deploy/routes.json', import.meta.url)),
  STATIC_DIR: fileURLToPath(new URL('../demo', import.meta.url)),
  // The native app simulated by demo/native.html gets its sign-in back on a page of the demo.
  NATIVE_REDIRECT_URIS: `${publicUrl}/native-callback.html`,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : { SESSION_STORE: 'memory' }),
})
const gateway = await buildApp(config, await loadRoutePolicy(config.routesFile))
const addresses = await gateway.listen()

process.stdout.write([
  '',
  `  Demo ready: open ${publicUrl} and sign in.`,
  `  A native app, simulated in the browser: ${publicUrl}/native.html`,
  '    alice / alice-password   (roles: user)',
  '    bob   / bob-password     (roles: user, admin)',
  '',
  `  gateway public ${addresses.public}, admin ${addresses.admin} (Bearer ${config.adminToken.slice(0, 6)}…)`,
  `  identity provider ${mock.idp.issuer}, API ${mock.api.url}`,
  `  session store: ${config.sessionStore}`,
  '',
].join('\n') + '\n')

const stop = async () => {
  await gateway.close()
  await mock.close()
  process.exit(0)
}
process.on('SIGINT', () => { stop().catch(() => process.exit(1)) })
process.on('SIGTERM', () => { stop().catch(() => process.exit(1)) })
