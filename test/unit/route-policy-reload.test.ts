/**
 * The policy holder on its own: what a reload may change in a running process,
 * the outcomes it reports, and reloads that overlap.
 */
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../gateway/config.js'
import { parseRoutePolicy, type RoutePolicy } from '../../gateway/proxy/route-policy.js'
import { createRoutePolicyHolder, restartNeeded, type ReloadOutcome } from '../../gateway/proxy/route-policy-reload.js'

type Json = Record<string, unknown>

const route = (prefix: string, override: Json = {}): Json => ({
  prefix,
  upstream: 'http://127.0.0.1:4001',
  allow: [{ methods: ['GET'], path: '/orders', roles: ['user'] }],
  ...override,
})
const policyOf = (...routes: Json[]): RoutePolicy => parseRoutePolicy({ routes }, 'routes.json')

describe('restartNeeded: what the routes registered at start-up cannot serve', () => {
  const started = policyOf(route('/api'), route('/chat', { websocket: true }))

  it('nothing for changed rules, a plain route\'s new upstream, a prefix dropped, WebSockets turned off', () => {
    expect(restartNeeded(started, policyOf(
      route('/api', { upstream: 'http://127.0.0.1:5000', allow: [{ methods: ['POST'], path: '/x', roles: ['admin'] }] })
    ))).toEqual([])
    expect(restartNeeded(started, policyOf(route('/chat', { upstream: 'http://127.0.0.1:5000' })))).toEqual([])
  })

  it('a line per route that needs a registration of its own', () => {
    expect(restartNeeded(started, policyOf(
      route('/billing'),
      route('/api', { websocket: true }),
      route('/chat', { websocket: true, upstream: 'http://127.0.0.1:5000' })
    ))).toEqual([
      'routes[0].prefix: "/billing" is not served by this process; adding a prefix needs a restart',
      'routes[1].websocket: "/api" was started without WebSockets; turning them on needs a restart',
      'routes[2].upstream: "/chat" proxies WebSockets to http://127.0.0.1:4001; changing a WebSocket route\'s upstream needs a restart',
    ])
  })
})

describe('createRoutePolicyHolder', () => {
  const initial = policyOf(route('/api'), route('/reports'))

  it('applies a valid policy, reports unchanged for the same bytes, refuses a bad one and keeps the one in force', async () => {
    const next = policyOf(route('/api'))
    const files: Array<RoutePolicy | Error> = [next, policyOf(route('/api')), new ConfigError(['ROUTES_FILE: routes: must list at least one route'])]
    const seen: ReloadOutcome[] = []
    const holder = createRoutePolicyHolder({
      initial,
      load: async () => { const file = files.shift()!; if (file instanceof Error) throw file; return file },
      onReload: outcome => seen.push(outcome),
    })
    expect(holder.current).toBe(initial)
    expect(await holder.reload('admin')).toEqual({ result: 'applied', by: 'admin', before: initial.sha256, after: next.sha256, problems: [] })
    expect(holder.current).toBe(next)
    expect(await holder.reload('signal')).toEqual({ result: 'unchanged', by: 'signal', before: next.sha256, after: next.sha256, problems: [] })
    expect(holder.current).toBe(next)
    expect(await holder.reload('admin')).toMatchObject({ result: 'refused', after: next.sha256, problems: ['ROUTES_FILE: routes: must list at least one route'] })
    expect(holder.current).toBe(next)
    expect(seen.map(outcome => outcome.result)).toEqual(['applied', 'unchanged', 'refused'])
  })

  it('refuses what needs a restart, with the start-up prefix on its lines', async () => {
    const holder = createRoutePolicyHolder({ initial, load: async () => policyOf(route('/billing')) })
    expect(await holder.reload('admin')).toMatchObject({
      result: 'refused',
      problems: ['ROUTES_FILE: routes[0].prefix: "/billing" is not served by this process; adding a prefix needs a restart'],
    })
    expect(holder.current).toBe(initial)
  })

  it('never rejects: an unexpected failure is a refusal with its message', async () => {
    const holder = createRoutePolicyHolder({ initial, load: async () => { throw new Error('disk on fire') } })
    expect(await holder.reload('signal')).toMatchObject({ result: 'refused', problems: ['ROUTES_FILE: disk on fire'] })
  })

  it('runs overlapping reloads one after the other, each starting from what the one before left', async () => {
    const versions = [policyOf(route('/api')), policyOf(route('/reports'))]
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    let loads = 0
    const holder = createRoutePolicyHolder({
      initial,
      load: async () => {
        const version = versions[loads++]!
        if (loads === 1) await gate
        return version
      },
    })
    const both = Promise.all([holder.reload('signal'), holder.reload('admin')])
    // Once every pending callback has run, an unqueued second reload would have started loading.
    await new Promise(resolve => setImmediate(resolve))
    expect(loads).toBe(1)
    release()
    const [one, two] = await both
    expect(one).toMatchObject({ result: 'applied', before: initial.sha256, after: versions[0]!.sha256 })
    expect(two).toMatchObject({ result: 'applied', before: versions[0]!.sha256, after: versions[1]!.sha256 })
    expect(holder.current).toBe(versions[1])
  })
})
