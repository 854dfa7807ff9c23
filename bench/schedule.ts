/**
 * What runs when. Every contender runs in short slices, and the slices go in
 * groups of one slice each, in the order a b d c (e), then (e) c d b a, then
 * a b d c (e) again, and so on. (b) and (d) are always side by side, and (d)
 * always beside (c): each ratio the targets are about compares slices run
 * seconds apart. (e), the gateway's narrowed DPoP route, goes at the end.
 * The many-users and cold contenders, measured against (b) too, go on (b)'s
 * other side, nearest first: a h g f b d c e, so (f) is always beside (b), and
 * (g) and (h) within one and two slices of it.
 * The order flips from group to group, so none of them is always the one that
 * meets a machine slowing down or speeding up, and a steady drift cancels.
 *
 * Why this matters here: this VM's speed changes on its own, for every process
 * alike, by up to a factor of two for stretches of seconds to minutes. Whole
 * rounds of several seconds per contender could land the gateway's in a slow
 * stretch and the bare proxy's outside it (`npm run bench -- --control` shows
 * how far two identical bare proxies drift apart).
 */
import type { ContenderKey } from './contenders.js'

/**
 * A group in its first form; every other group runs reversed. (i), the gateway refreshing
 * expiring tokens, goes after (e), so two of its runs follow each other at each turn of the
 * order (its sessions are handed out so that each run still meets expired tokens). (l) and (m),
 * the sign-ins, run after the table, in groups of their own (l m, then m l).
 */
const GROUP_ORDER: readonly ContenderKey[] = ['a', 'h', 'g', 'f', 'b', 'd', 'c', 'e', 'i', 'l', 'm']

export interface ScheduledRun<T> {
  contender: T
  seconds: number
}

/** The runs of one round: every contender for `durationSeconds`, in slices of `sliceSeconds`. */
export function roundRuns<T extends { key: ContenderKey }> (
  contenders: readonly T[], round: number, durationSeconds: number, sliceSeconds: number
): Array<ScheduledRun<T>> {
  const group = [...contenders].sort((x, y) => GROUP_ORDER.indexOf(x.key) - GROUP_ORDER.indexOf(y.key))
  const slices = durationSeconds / sliceSeconds
  const runs: Array<ScheduledRun<T>> = []
  for (let slice = 0; slice < slices; slice++) {
    const order = (round * slices + slice) % 2 === 0 ? group : [...group].reverse()
    for (const contender of order) runs.push({ contender, seconds: sliceSeconds })
  }
  return runs
}
