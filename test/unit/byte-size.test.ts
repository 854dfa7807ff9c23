/**
 * Byte sizes as operators write them (SESSION_CACHE_MEMORY): a number and an
 * optional unit, powers of 1024 however the unit is spelt.
 */
import { describe, expect, it } from 'vitest'
import { parseByteSize } from '../../gateway/byte-size.js'

const MiB = 1024 * 1024

describe('byte sizes', () => {
  it.each([
    ['0', 0],
    ['1048576', MiB],
    ['512b', 512],
    ['64k', 64 * 1024],
    ['64kb', 64 * 1024],
    ['64KiB', 64 * 1024],
    ['64mb', 64 * MiB],
    ['64MB', 64 * MiB],
    ['64 MiB', 64 * MiB],
    [' 64m ', 64 * MiB],
    ['1.5gb', 1.5 * 1024 * MiB],
    ['2G', 2 * 1024 * MiB],
    ['0.5kb', 512],
    ['1.0001kb', 1024],
  ])('reads %j as %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes)
  })

  it.each([
    '', 'mb', 'lots', '-1mb', '+1mb', '64xb', '64 m b', '64tb', '1e9', '0x10', '1,5mb', '.5mb', '5.mb', 'constructor', '64constructor',
    '9999999999999gb',
  ])('refuses %j', (text) => {
    expect(parseByteSize(text)).toBeUndefined()
  })
})
