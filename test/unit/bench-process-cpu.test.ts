import { describe, expect, it } from 'vitest'
import { processCpuMs } from '../../bench/process-cpu.js'

describe('a process\'s CPU time, for the sign-in contenders', () => {
  it.runIf(process.platform === 'linux')('reads a live process\'s user and system time from /proc, growing as it works', async () => {
    const before = await processCpuMs(process.pid)
    const until = performance.now() + 60
    while (performance.now() < until) Math.sqrt(Math.random())
    const after = await processCpuMs(process.pid)
    expect(before).toBeGreaterThan(0)
    expect(after).toBeGreaterThan(before as number)
  })

  it('cannot tell for a process that is not there', async () => {
    expect(await processCpuMs(undefined)).toBeUndefined()
    expect(await processCpuMs(2 ** 30)).toBeUndefined()
  })
})
