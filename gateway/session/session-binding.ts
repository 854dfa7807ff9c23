/**
 * Session binding: is this request coming from the client the session was
 * created for? Compared on the User-Agent and, when configured, on the
 * client's network (a prefix, because mobile users change addresses).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { SessionMeta } from './store.js'

export interface BindingRules {
  /** Compare IPv4 clients on this many leading bits; undefined: do not compare IPv4 addresses. */
  ipv4Prefix?: number
  ipv6Prefix?: number
}

export type BindingMismatch = 'user_agent' | 'network'

/**
 * How much of a User-Agent a session keeps (in its clear `meta`, one per signed-in user in Redis)
 * and binding compares. Browsers send far less; a client that sends kilobytes does not get to
 * store them.
 */
export const KEPT_USER_AGENT_CHARS = 256

export function keptUserAgent (userAgent: string): string {
  return userAgent.length > KEPT_USER_AGENT_CHARS ? userAgent.slice(0, KEPT_USER_AGENT_CHARS) : userAgent
}

function sameNetwork (created: string, current: string, rules: BindingRules): boolean {
  const created4 = created.replace(/^::ffff:/, '')
  const current4 = current.replace(/^::ffff:/, '')
  if (isIPv4(created4) && isIPv4(current4)) {
    if (rules.ipv4Prefix === undefined) return true
    const list = new BlockList()
    list.addSubnet(created4, rules.ipv4Prefix, 'ipv4')
    return list.check(current4, 'ipv4')
  }
  if (isIPv6(created) && isIPv6(current)) {
    if (rules.ipv6Prefix === undefined) return true
    const list = new BlockList()
    list.addSubnet(created, rules.ipv6Prefix, 'ipv6')
    return list.check(current, 'ipv6')
  }
  // A change of address family is a change of network, when networks are compared at all.
  return rules.ipv4Prefix === undefined && rules.ipv6Prefix === undefined
}

export function bindingMismatch (meta: Pick<SessionMeta, 'ip' | 'userAgent'>, client: { ip: string, userAgent: string }, rules: BindingRules): BindingMismatch | undefined {
  // Both sides cut: a session from before the cut keeps its whole User-Agent.
  if (keptUserAgent(meta.userAgent) !== keptUserAgent(client.userAgent)) return 'user_agent'
  if (!sameNetwork(meta.ip, client.ip, rules)) return 'network'
  return undefined
}
