/**
 * The admin CLI's commands, as a function tests can call: each maps to one
 * admin API call and prints a readable result.
 *
 *   sessions list --user <sub>      list a user's sessions
 *   logout --user <sub>             end every session of a user (lost device, role change)
 *   logout --session <id>           end one session, by its public id
 *   flush --all --yes               end every session of every user
 *   status --user <sub>             whether the account is active or disabled, and its sessions
 *   disable --user <sub>            end every session of a user and refuse their logins
 *   enable --user <sub>             let a disabled user sign in again
 *   refresh --user <sub>            make each session of a user refresh its tokens (changed roles or claims)
 *   routes                          the route policy in force and its SHA-256
 *   routes reload                   re-read ROUTES_FILE (as SIGHUP does); a refusal prints its problems
 *
 * Talks to the admin listener: ADMIN_URL (default http://127.0.0.1:3001) and ADMIN_TOKEN.
 */
import { parseArgs } from 'node:util'

interface SessionRow { id: string, createdAt: string, lastSeenAt: string, ip: string, userAgent: string }

const USAGE = `usage: npm run admin -- <command>
  sessions list --user <sub>
  logout --user <sub>
  logout --session <id>
  flush --all --yes
  status --user <sub>
  disable --user <sub>
  enable --user <sub>
  refresh --user <sub>
  routes
  routes reload
environment: ADMIN_URL (default http://127.0.0.1:3001), ADMIN_TOKEN (required)`

/** The command line was wrong: exit code 2 and the usage text. */
export class UsageError extends Error {}

function table (rows: SessionRow[]): string {
  const header = ['ID', 'CREATED', 'LAST SEEN', 'IP', 'USER AGENT']
  const body = rows.map(r => [r.id, r.createdAt, r.lastSeenAt, r.ip, r.userAgent.slice(0, 60)])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map(row => (row[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(header), ...body.map(line)].join('\n')
}

async function call (method: string, path: string): Promise<unknown> {
  const base = process.env.ADMIN_URL ?? 'http://127.0.0.1:3001'
  const token = process.env.ADMIN_TOKEN
  if (!token) throw new UsageError('ADMIN_TOKEN is not set')
  const response = await fetch(new URL(path, base), { method, headers: { authorization: `Bearer ${token}` } })
  const body = await response.json().catch(() => undefined) as { error?: string, message?: string, problems?: string[] } | undefined
  if (!response.ok) {
    const summary = `${method} ${path}: ${response.status} ${body?.error ?? ''} ${body?.message ?? ''}`.trim()
    throw new Error([summary, ...(body?.problems ?? [])].join('\n'))
  }
  return body
}

export async function runAdminCommand (argv: string[], print: (line: string) => void): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      session: { type: 'string' },
      all: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
    },
  })
  const command = positionals.join(' ')
  const user = values.user ? encodeURIComponent(values.user) : undefined
  if (command === 'sessions list' && user) {
    const { sessions } = await call('GET', `/admin/users/${user}/sessions`) as { sessions: SessionRow[] }
    print(sessions.length > 0 ? table(sessions) : `no sessions for ${values.user}`)
  } else if (command === 'logout' && user && !values.session) {
    const { revoked } = await call('DELETE', `/admin/users/${user}/sessions`) as { revoked: number }
    print(`ended ${revoked} session(s) of ${values.user}; their next login re-authenticates at the identity provider`)
  } else if (command === 'logout' && values.session && !user) {
    await call('DELETE', `/admin/sessions/${encodeURIComponent(values.session)}`)
    print(`ended session ${values.session}`)
  } else if (command === 'status' && user) {
    const { status, sessions } = await call('GET', `/admin/users/${user}`) as { status: string, sessions: number }
    print(`${values.user}: ${status}, ${sessions} session(s)`)
  } else if (command === 'disable' && user) {
    const { revoked } = await call('POST', `/admin/users/${user}/disable`) as { revoked: number }
    print(`disabled ${values.user}: ended ${revoked} session(s); their logins are refused until enabled`)
  } else if (command === 'enable' && user) {
    await call('POST', `/admin/users/${user}/enable`)
    print(`enabled ${values.user}`)
  } else if (command === 'refresh' && user) {
    const { sessions } = await call('POST', `/admin/users/${user}/refresh`) as { sessions: number }
    print(`${sessions} session(s) of ${values.user} refresh their tokens before their next request`)
  } else if (command === 'routes') {
    const { sha256, routes } = await call('GET', '/admin/routes') as { sha256: string, routes: unknown[] }
    print(`sha256 ${sha256}\n${JSON.stringify({ routes }, null, 2)}`)
  } else if (command === 'routes reload') {
    const { result, sha256, previousSha256 } = await call('POST', '/admin/routes/reload') as { result: string, sha256: string, previousSha256: string }
    print(result === 'applied' ? `applied: sha256 ${previousSha256} -> ${sha256}` : `unchanged: sha256 ${sha256}`)
  } else if (command === 'flush' && values.all) {
    if (!values.yes) throw new UsageError('flush --all ends every session of every user; add --yes to confirm')
    const { revoked } = await call('DELETE', '/admin/sessions?all=true') as { revoked: number }
    print(`ended ${revoked} session(s)`)
  } else {
    throw new UsageError(USAGE)
  }
}
