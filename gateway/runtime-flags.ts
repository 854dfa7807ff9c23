/**
 * V8 settings the gateway's process runs with, applied by the process entry
 * (`server.ts`) before the gateway is built.
 *
 * Allocation-site pretenuring off. V8 watches which allocation sites' objects
 * survive a scavenge and, past a threshold, allocates that site's objects
 * straight into the old generation from then on. A gateway's per-request
 * objects normally die young; but when the process starts under CPU
 * starvation (a busy host, a rolling restart onto a loaded node), requests
 * last long enough for their objects to survive, V8 pretenures those sites,
 * and does not take it back: every later request fills the old generation,
 * and garbage collection takes many times its normal share of the CPU, for
 * the life of the process. Gateways started beside CPU hogs got stuck in that
 * state with pretenuring on and never with it off, and in steady state the
 * setting made no measurable difference (the runs are in bench/HISTORY.md).
 *
 * Node takes this flag on its command line, not in NODE_OPTIONS, hence this
 * call. An explicit choice on the command line wins:
 * `node --allocation-site-pretenuring dist/gateway/server.js` keeps V8's default.
 */
import { setFlagsFromString } from 'node:v8'

export const RUNTIME_V8_FLAGS = ['--no-allocation-site-pretenuring'] as const

/** `--no-foo_bar` and `--foo-bar` both name `foo-bar`. */
function flagName (flag: string): string {
  return flag.replace(/=.*$/, '').replace(/^--(no-)?/, '').replaceAll('_', '-')
}

/** Sets each of RUNTIME_V8_FLAGS the command line does not decide itself; returns those it set. */
export function applyRuntimeFlags (execArgv: readonly string[] = process.execArgv): string[] {
  const chosen = new Set(execArgv.filter(arg => arg.startsWith('--')).map(flagName))
  const applied = RUNTIME_V8_FLAGS.filter(flag => !chosen.has(flagName(flag)))
  for (const flag of applied) setFlagsFromString(flag)
  return applied
}
