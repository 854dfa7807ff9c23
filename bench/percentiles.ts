/** Small statistics over plain numbers: no histograms, no rounding to whole milliseconds. */

/** Nearest-rank percentile (0 < p <= 100) of values sorted ascending; NaN when empty. */
export function percentileOfSorted (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number
}

export function percentile (values: readonly number[], p: number): number {
  return percentileOfSorted([...values].sort((a, b) => a - b), p)
}

/** The middle value (mean of the two middle ones for an even count); NaN when empty. */
export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? sorted[middle] as number
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** A growable list of latencies in a typed array: a million samples cost 8 MB and no GC churn. */
export class LatencyRecorder {
  #values = new Float64Array(1 << 16)
  #length = 0

  record (ms: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2)
      bigger.set(this.#values)
      this.#values = bigger
    }
    this.#values[this.#length++] = ms
  }

  get count (): number {
    return this.#length
  }

  sorted (): Float64Array {
    return this.#values.slice(0, this.#length).sort()
  }
}
