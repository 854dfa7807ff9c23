/**
 * Process edge: environment → config → route policy → gateway → listeners;
 * signals, fatal errors and a graceful shutdown (close-with-grace). The only
 * file that reads `process.env`.
 */
import closeWithGrace from 'close-with-grace'
import { applyRuntimeFlags } from './runtime-flags.js'
import { ConfigError, loadConfig } from './config.js'
import { loadRoutePolicy } from './proxy/route-policy.js'
import { checkPolicyAgainstConfig } from './proxy/token-policy.js'
import { buildApp } from './app.js'
import { shutDownGracefully } from './edge/shutdown.js'

// close-with-grace would take over every signal it knows; these keep Node's meaning (SIGHUP is meant
// for a route policy reload, not a stop), and an event loop running empty (`beforeExit`) is no reason to drain.
const NOT_A_SHUTDOWN: closeWithGrace.AllEvents[] = [
  'SIGHUP', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'beforeExit',
]

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
  const log = gateway.app.log
  // SIGHUP re-reads ROUTES_FILE; a policy that is not valid is refused and the one in force stays.
  // The outcome is audited (and a refusal's lines logged) where the reload happens.
  process.on('SIGHUP', () => {
    gateway.reloadRoutePolicy('signal').catch((err: unknown) => log.error({ err }, 'route policy reload failed'))
  })
  const addresses = await gateway.listen()
  const store = config.sessionStore === 'redis' ? `redis (${config.redis?.mode})` : 'memory (single process, demo only)'
  process.stdout.write(`bff-gateway public listener on ${addresses.public} (PUBLIC_URL ${config.publicUrl})\n`)
  process.stdout.write(`bff-gateway admin listener on ${addresses.admin}\n`)
  process.stdout.write(`bff-gateway session store: ${store}\n`)

  // SIGTERM, SIGINT, an uncaught exception or an unhandled rejection: logged, then the graceful
  // shutdown; exit 0 after a signal, 1 after an error, 1 at once on a second signal or error, and 1
  // if requests in flight are still not done SHUTDOWN_TIMEOUT after the listener closed.
  const { delaySeconds, timeoutSeconds } = config.shutdown
  closeWithGrace({
    delay: (delaySeconds + timeoutSeconds) * 1000,
    logger: log,
    skip: NOT_A_SHUTDOWN,
    onTimeout: () => log.error({ timeoutSeconds }, 'shutdown timed out: requests still in flight are cut off'),
  }, async ({ signal, err }) => {
    if (err) log.fatal({ err }, 'fatal error: shutting down')
    else log.info({ signal }, 'shutting down')
    await shutDownGracefully(gateway, { delayMs: delaySeconds * 1000, log })
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`bff-gateway failed to start: ${(error as Error).message}\n`)
  process.exit(1)
})
