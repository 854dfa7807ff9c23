/** What the numbers were measured on. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, release, totalmem, type } from 'node:os'

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGiB: number
  os: string
  node: string
  redis: string
  date: string
  /** 1-minute load average when the run started: above ~0.5, something else was using the cores. */
  loadAverageAtStart: number
  /** The same once the throughput rounds were over: the load generator and contenders account for about 2. */
  loadAverageAfterRounds?: number
}

function cpuModel (): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find(l => l.startsWith('model name'))
    return line?.split(':')[1]?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function redisVersion (): string {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export function loadAverageNow (): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100
}

export function describeMachine (now = new Date()): MachineInfo {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    redis: redisVersion(),
    date: now.toISOString(),
    loadAverageAtStart: loadAverageNow(),
  }
}
