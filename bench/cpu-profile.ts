/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and tells where the time
 * went: self time per function and per area (a gateway file, a package, Node
 * internals, GC), as shares of the time the process was not idle.
 */
import { readFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface FunctionTime {
  functionName: string
  location: string
  area: string
  selfMs: number
  percentOfBusy: number
}

export interface AreaTime {
  area: string
  selfMs: number
  percentOfBusy: number
}

export interface ProfileSummary {
  file: string
  totalMs: number
  busyMs: number
  /** By self time. */
  functions: FunctionTime[]
  areas: AreaTime[]
  /** Functions of the project (not node_modules), by inclusive time: they and what they call synchronously. */
  projectInclusive: FunctionTime[]
}

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

function location (url: string, line: number): string {
  if (!url) return ''
  const path = url.startsWith('file://') ? relative(PROJECT_ROOT, fileURLToPath(url)) : url
  // tsx compiles each TypeScript file to one line: a line number there would only mislead.
  return path.endsWith('.ts') ? path : `${path}:${line + 1}`
}

/** A gateway file, an npm package, a Node subsystem, or a V8 pseudo-frame such as (garbage collector). */
function areaOf (frame: CallFrame): string {
  const { url, functionName } = frame
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) {
    const parts = url.slice('node:'.length).split('/')
    return parts[0] === 'internal' ? `node:internal/${parts[1] ?? ''}`.replace(/\.js$/, '') : `node:${parts[0]}`
  }
  const path = url.startsWith('file://') ? relative(PROJECT_ROOT, fileURLToPath(url)) : url
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  if (packageMatch?.[1]) return packageMatch[1]
  return path
}

export async function summariseProfile (file: string, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const selfUs = new Map<number, number>()
  // timeDeltas[i] is the time between sample i-1 and sample i: the time sample i-1 stood for.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
  }

  const functions = new Map<string, { functionName: string, location: string, area: string, us: number }>()
  const areas = new Map<string, number>()
  let totalUs = 0
  let idleUs = 0
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame
    totalUs += us
    if (frame.functionName === '(idle)') {
      idleUs += us
      continue
    }
    const functionName = frame.functionName || '(anonymous)'
    const where = location(frame.url, frame.lineNumber)
    const key = `${functionName}\0${where}`
    const area = areaOf(frame)
    const entry = functions.get(key) ?? { functionName, location: where, area, us: 0 }
    entry.us += us
    functions.set(key, entry)
    areas.set(area, (areas.get(area) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs

  // Inclusive time: each sample counts once for every distinct project function on its stack.
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const inclusive = new Map<string, { functionName: string, location: string, area: string, us: number }>()
  for (const [id, us] of selfUs) {
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = (byId.get(at) as ProfileNode).callFrame
      if (!frame.url.startsWith('file://') || frame.url.includes('/node_modules/')) continue
      const functionName = frame.functionName || '(anonymous)'
      const where = location(frame.url, frame.lineNumber)
      const key = `${functionName}\0${where}`
      if (seen.has(key)) continue
      seen.add(key)
      const entry = inclusive.get(key) ?? { functionName, location: where, area: areaOf(frame), us: 0 }
      entry.us += us
      inclusive.set(key, entry)
    }
  }
  const share = (us: number) => busyUs > 0 ? (us / busyUs) * 100 : 0
  return {
    file: relative(PROJECT_ROOT, file),
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(f => ({ functionName: f.functionName, location: f.location, area: f.area, selfMs: f.us / 1000, percentOfBusy: share(f.us) })),
    projectInclusive: [...inclusive.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(f => ({ functionName: f.functionName, location: f.location, area: f.area, selfMs: f.us / 1000, percentOfBusy: share(f.us) })),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, us]) => ({ area, selfMs: us / 1000, percentOfBusy: share(us) })),
  }
}
