/**
 * The order the contenders run in, round by round. (b) and (d) always run back
 * to back, so each round's gateway ÷ bare-proxy ratio compares the two under the
 * same machine state, and which of them goes first alternates, so neither is
 * always the one that meets a machine slowing down or speeding up. The others
 * and the pair rotate from round to round, so drift hits every contender alike.
 */
import type { ContenderKey } from './contenders.js'

const PAIRED: readonly ContenderKey[] = ['b', 'd']

export function roundOrder<T extends { key: ContenderKey }> (contenders: readonly T[], round: number): T[] {
  const pair = contenders.filter(c => PAIRED.includes(c.key))
  if (round % 2 === 1) pair.reverse()
  const units: T[][] = contenders.filter(c => !PAIRED.includes(c.key)).map(c => [c])
  if (pair.length > 0) units.push(pair)
  const shift = round % units.length
  return [...units.slice(shift), ...units.slice(0, shift)].flat()
}
