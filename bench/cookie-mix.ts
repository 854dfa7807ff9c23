/**
 * Which session each request of a many-users contender goes out as: the load
 * generator reads the sessions' cookies from a file (one `name=value` a line)
 * and picks one per request, uniformly at random or with a Zipf-like skew.
 *
 * Zipf: the session of rank k (1-based) is picked with probability
 * proportional to 1 / k^s. With s = 1, the figure usually quoted for web
 * traffic, the most active 20 % of 50 000 sessions make 86 % of the requests
 * (H(10 000) / H(50 000)); a cache holding them serves that share, where a
 * uniform mix over the same sessions gets 20 %.
 */

export type CookieDistribution = 'uniform' | 'zipf'

/** The Zipf mix's exponent s. */
export const ZIPF_EXPONENT = 1

/** What a many-users contender asks of the load generator. */
export interface CookieMix {
  /** One cookie a line, `name=value`, as the `cookie` request header carries it. */
  file: string
  distribution: CookieDistribution
  /** Zipf only; ZIPF_EXPONENT when absent. */
  exponent?: number
}

/** Returns a function giving one index in [0, count) per call, drawn from the distribution. */
export function createPicker (count: number, distribution: CookieDistribution, exponent = ZIPF_EXPONENT, random: () => number = Math.random): () => number {
  if (!Number.isInteger(count) || count < 1) throw new Error(`a cookie mix needs at least one session, got ${count}`)
  if (distribution === 'uniform') return () => Math.floor(random() * count)
  // Cumulative weights, then a binary search per pick: 19 steps for 500 000 sessions.
  const cumulative = new Float64Array(count)
  let total = 0
  for (let rank = 1; rank <= count; rank++) {
    total += 1 / rank ** exponent
    cumulative[rank - 1] = total
  }
  return () => {
    const target = random() * total
    let low = 0
    let high = count - 1
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((cumulative[middle] as number) > target) high = middle
      else low = middle + 1
    }
    return low
  }
}

/** The share of all requests the `top` most-picked sessions of a Zipf mix get. */
export function zipfShareOfTop (top: number, count: number, exponent = ZIPF_EXPONENT): number {
  let head = 0
  let all = 0
  for (let rank = 1; rank <= count; rank++) {
    const weight = 1 / rank ** exponent
    all += weight
    if (rank <= top) head += weight
  }
  return head / all
}
