import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'

/**
 * Where the kernel picks local ports for outgoing connections. A port the OS
 * hands out for `listen(0)` comes from this range too, so a client connection
 * made in the meantime (Redis, the IdP, another test file's load) can take it
 * before the server that was meant to use it binds it: EADDRINUSE, now and then.
 */
function lowestEphemeralPort (): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low)) return low
  } catch {
    // Not Linux: fall through to the IANA dynamic range.
  }
  return 49152
}

const LOWEST = 10_000
const ATTEMPTS = 50
/** Shares the range is cut into when tests run in vitest's workers (our configs run at most 2 at once). */
const SHARES = 4

function bindable (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.unref()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

function anyPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.unref()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

/**
 * This process's share of the ports below the ephemeral range. Test files run in parallel
 * workers, and each picks ports some time before its servers bind them; two workers drawing
 * from one range hand out the same port now and then. vitest numbers its workers
 * (VITEST_POOL_ID, from 1), so each gets a range of its own.
 */
function shareOf (low: number): { from: number, size: number } {
  const pool = Number(process.env.VITEST_POOL_ID)
  if (!Number.isInteger(pool) || pool < 1) return { from: LOWEST, size: low - LOWEST }
  const size = Math.floor((low - LOWEST) / SHARES)
  return { from: LOWEST + ((pool - 1) % SHARES) * size, size }
}

/** Ports this process has handed out. Two picks made before either is bound would both pass the bind check. */
const handedOut = new Set<number>()

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen at random below
 * the ephemeral range, where no outgoing connection takes it before it is used.
 */
export async function freePort (): Promise<number> {
  const low = lowestEphemeralPort()
  const { from, size } = shareOf(low)
  if (size >= 1000) {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const port = from + Math.floor(Math.random() * size)
      if (handedOut.has(port) || !(await bindable(port))) continue
      handedOut.add(port)
      return port
    }
  }
  return anyPort()
}

/**
 * A port where connections are refused, reliably: a port freed by `freePort`
 * can be taken by another test's server running in parallel before it is
 * used. Nothing listens on tcpmux (1) on a test machine.
 */
export const REFUSED_PORT = 1
