/**
 * Process edge: environment → config → route policy → gateway → listeners;
 * signals and a graceful close. The only file that reads `process.env`.
 */
import { applyRuntimeFlags } from './runtime-flags.js'
import { ConfigError, loadConfig } from './config.js'
import { loadRoutePolicy } from './proxy/route-policy.js'
import { checkPolicyAgainstConfig } from './proxy/token-policy.js'
import { buildApp } from './app.js'

async function main (): Promise<void> {
  applyRuntimeFlags()
  let config, policy
  try {
    config = loadConfig(process.env)
    policy = await loadRoutePolicy(config.routesFile)
    checkPolicyAgainstConfig(policy, config)
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`)
      process.exit(1)
    }
    throw error
  }

  const gateway = await buildApp(config, policy)
  const addresses = await gateway.listen()
  const store = config.sessionStore === 'redis' ? `redis (${config.redis?.mode})` : 'memory (single process, demo only)'
  process.stdout.write(`bff-gateway public listener on ${addresses.public} (PUBLIC_URL ${config.publicUrl})\n`)
  process.stdout.write(`bff-gateway admin listener on ${addresses.admin}\n`)
  process.stdout.write(`bff-gateway session store: ${store}\n`)

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    gateway.app.log.info({ signal }, 'shutting down: draining in-flight requests')
    // Fastify stops accepting, lets in-flight requests finish, then we close Redis.
    const deadline = setTimeout(() => process.exit(1), 25_000)
    deadline.unref()
    gateway.close().then(() => process.exit(0), (error: unknown) => {
      gateway.app.log.error({ err: error }, 'error during shutdown')
      process.exit(1)
    })
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main().catch((error: unknown) => {
  process.stderr.write(`bff-gateway failed to start: ${(error as Error).message}\n`)
  process.exit(1)
})
