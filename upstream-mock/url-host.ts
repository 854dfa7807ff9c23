/** The host to put in a URL for a listener bound to `host`: wildcard binds are reached over loopback. */
export function urlHost (host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}
