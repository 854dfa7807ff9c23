/**
 * The mock IdP (oidc-provider) in a process of its own, for the login and
 * refresh contenders: its work then competes with the gateway's for the CPU as
 * a real IdP's would not, but it shares no event loop with the gateway, the
 * load driver or the orchestrator. Started by idp-child.ts with its options as
 * JSON in BENCH_IDP_OPTIONS; answers `idp-stats` questions over IPC with its
 * token-endpoint counts.
 */
import { startIdentityProvider, type IdentityProviderOptions } from '../upstream-mock/idp.js'
import { announceReady, closeOnStop, requiredEnv } from './child-side.js'
import type { IdpStatsReply, IdpStatsRequest } from './idp-child.js'

const idp = await startIdentityProvider(JSON.parse(requiredEnv('BENCH_IDP_OPTIONS')) as IdentityProviderOptions)

process.on('message', (message: IdpStatsRequest) => {
  if (message.type !== 'idp-stats') return
  const reply: IdpStatsReply = { type: 'idp-stats', id: message.id, tokenCalls: { ...idp.tokenCalls }, serverErrors: idp.serverErrors.length }
  process.send?.(reply)
})

announceReady(idp.issuer)
closeOnStop(() => idp.close())
