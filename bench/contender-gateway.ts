/**
 * Contender (d): this gateway, built by the real `buildApp` from the same
 * environment loader `gateway/server.ts` uses. The orchestrator passes the
 * environment (Redis store, the bench IdP, a policy pointing at the stub).
 */
import { applyRuntimeFlags } from '../gateway/runtime-flags.js'
import { loadConfig } from '../gateway/config.js'
import { loadRoutePolicy } from '../gateway/proxy/route-policy.js'
import { buildApp } from '../gateway/app.js'
import { announceReady, closeOnStop } from './child-side.js'

// As server.ts does first.
applyRuntimeFlags()
const config = loadConfig(process.env)
const gateway = await buildApp(config, await loadRoutePolicy(config.routesFile))
const addresses = await gateway.listen()
announceReady(addresses.public)
closeOnStop(() => gateway.close())
