/**
 * What runs when, round by round. (b) and (d) share each round's time in
 * slices that alternate between them (b d, d b, b d, …), so each slice of one
 * has a slice of the other right beside it. This VM's speed changes by up to
 * half for stretches of ten seconds or more, on its own and for every process
 * alike (two identical bare proxies measured this way differ by up to 25 % in
 * a single 6 s round): only pairs close in time compare the two fairly. Which
 * of them opens a round alternates too, so neither is always the one that
 * meets a machine slowing down or speeding up. The others run one whole round
 * each, and they and the pair rotate, so drift hits every contender alike.
 */
import type { ContenderKey } from './contenders.js'

const PAIRED: readonly ContenderKey[] = ['b', 'd']

export interface ScheduledRun<T> {
  contender: T
  seconds: number
}

export function roundRuns<T extends { key: ContenderKey }> (
  contenders: readonly T[], round: number, durationSeconds: number, sliceSeconds: number
): Array<ScheduledRun<T>> {
  const pair = contenders.filter(c => PAIRED.includes(c.key))
  const units: Array<Array<ScheduledRun<T>>> = contenders
    .filter(c => !PAIRED.includes(c.key))
    .map(contender => [{ contender, seconds: durationSeconds }])
  if (pair.length > 0) {
    const slices: Array<ScheduledRun<T>> = []
    for (let slice = 0; slice < durationSeconds / sliceSeconds; slice++) {
      const order = (round + slice) % 2 === 0 ? pair : [...pair].reverse()
      for (const contender of order) slices.push({ contender, seconds: sliceSeconds })
    }
    units.push(slices)
  }
  const shift = round % units.length
  return [...units.slice(shift), ...units.slice(0, shift)].flat()
}
