/**
 * oidc-provider 9 prints "Unsupported runtime" at import time on Node 20 (it
 * wants 22+), though it runs fine here. Load it once with that single line
 * filtered out, so test output stays readable. Everything else is printed.
 */
import type * as OidcProvider from 'oidc-provider'
import type * as GrantHelpers from 'oidc-provider/lib/helpers/grants.js'

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

/**
 * oidc-provider's helpers for grant handlers, which it hands only to its own grants: a
 * registered grant type (token exchange) validates DPoP proofs exactly as the built-in ones.
 * Imported after the package itself, so its runtime warning stays filtered.
 */
export async function loadGrantHelpers (): Promise<typeof GrantHelpers> {
  await loadOidcProvider()
  return import('oidc-provider/lib/helpers/grants.js')
}
