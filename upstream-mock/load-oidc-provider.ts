/**
 * oidc-provider 9 prints "Unsupported runtime" at import time on Node 20 (it
 * wants 22+), though it runs fine here. Load it once with that single line
 * filtered out, so test output stays readable. Everything else is printed.
 */
import type * as OidcProvider from 'oidc-provider'

let loading: Promise<typeof OidcProvider> | undefined

async function importQuietly (): Promise<typeof OidcProvider> {
  const warn = console.warn
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return
    warn.apply(console, args)
  }
  try {
    return await import('oidc-provider')
  } finally {
    console.warn = warn
  }
}

export function loadOidcProvider (): Promise<typeof OidcProvider> {
  loading ??= importQuietly()
  return loading
}
