/**
 * Byte sizes as operators write them in the environment: `64mb`, `1.5GiB`,
 * `512k`, or a plain number of bytes.
 */

// Powers of 1024 whichever way the unit is spelt, as the `bytes` package and Redis's `kb`/`mb`/`gb`
// read them: an operator who writes `64mb` and one who writes `64MiB` mean the same memory.
const UNITS = new Map<string, number>([
  ['', 1], ['b', 1],
  ['k', 1024], ['kb', 1024], ['kib', 1024],
  ['m', 1024 ** 2], ['mb', 1024 ** 2], ['mib', 1024 ** 2],
  ['g', 1024 ** 3], ['gb', 1024 ** 3], ['gib', 1024 ** 3],
])

const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/

/** Whole bytes, or undefined for anything that is not a size (a sign, an unknown unit, an exponent, too large). */
export function parseByteSize (text: string): number | undefined {
  const match = BYTE_SIZE.exec(text.trim().toLowerCase())
  if (!match) return undefined
  const unit = UNITS.get(match[2]!)
  if (unit === undefined) return undefined
  const bytes = Math.floor(Number(match[1]) * unit)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}
