/**
 * The order of a graceful shutdown (edge/shutdown.ts), on a fake clock:
 * drain at once, close only once the delay has passed, and resolve when the
 * close is done. The same sequence on a real process: test/faults/shutdown.fault.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { shutDownGracefully } from '../../gateway/edge/shutdown.js'

afterEach(() => { vi.useRealTimers() })

describe('graceful shutdown', () => {
  it('drains at once, closes after the delay, and is done when the close is', async () => {
    vi.useFakeTimers()
    const steps: string[] = []
    let finishClose: () => void = () => {}
    const gateway = {
      drain: () => { steps.push('drain') },
      close: () => {
        steps.push('close')
        return new Promise<void>(resolve => { finishClose = resolve })
      },
    }
    let done = false
    const shutdown = shutDownGracefully(gateway, { delayMs: 5000, log: { info: () => {} } }).then(() => { done = true })
    expect(steps).toEqual(['drain'])
    await vi.advanceTimersByTimeAsync(4999)
    expect(steps).toEqual(['drain'])
    await vi.advanceTimersByTimeAsync(1)
    expect(steps).toEqual(['drain', 'close'])
    expect(done).toBe(false)
    finishClose()
    await shutdown
    expect(done).toBe(true)
  })
})
