import { createServer, type AddressInfo } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, release it). */
export async function freePort (): Promise<number> {
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
 * A port where connections are refused, reliably: a port freed by `freePort`
 * can be taken by another test's server running in parallel before it is
 * used. Nothing listens on tcpmux (1) on a test machine.
 */
export const REFUSED_PORT = 1
