/** The orchestrator's handle on an IdP process (idp-process.ts): its issuer, its counts, and a way to stop it. */
import type { IdentityProviderOptions, TokenCalls } from '../upstream-mock/idp.js'
import { ipcRequester } from './ipc-request.js'
import { startChild } from './processes.js'

export interface IdpStatsRequest {
  type: 'idp-stats'
  id: number
}

export interface IdpStatsReply {
  type: 'idp-stats'
  id: number
  /** Token-endpoint requests by grant type, counted on arrival, since the IdP started. */
  tokenCalls: TokenCalls
  /** Errors oidc-provider reported as server_error, and handler crashes; 0 in a healthy run. */
  serverErrors: number
}

export interface IdpChild {
  readonly issuer: string
  readonly pid: number | undefined
  stats (): Promise<Omit<IdpStatsReply, 'type' | 'id'>>
  stop (): Promise<void>
}

/** Options must survive JSON (no functions): they travel in the child's environment. */
export async function startIdpChild (options: IdentityProviderOptions): Promise<IdpChild> {
  const child = await startChild('idp-process', { env: { BENCH_IDP_OPTIONS: JSON.stringify(options) } })
  const ask = ipcRequester<Omit<IdpStatsRequest, 'id'>, IdpStatsReply>(child.process, 'the bench IdP', 'idp-stats')
  return {
    issuer: child.url,
    pid: child.process.pid,
    async stats () {
      const { tokenCalls, serverErrors } = await ask({ type: 'idp-stats' })
      return { tokenCalls, serverErrors }
    },
    stop: () => child.stop(),
  }
}
