/**
 * What an opened session costs the heap while the session cache holds it: an
 * estimate, made once when the session is stored, that the cache's byte budget
 * (`SESSION_CACHE_MEMORY`) is counted in.
 *
 * The sizes are V8's on 64-bit Node.js (no pointer compression: 8-byte fields).
 * The fixed part was calibrated against the heap growth of a cache filled with
 * realistic sessions (`npm run bench:cache-memory`, docs/sessions.md): the
 * estimate is meant to be within a few percent of it, so a budget is a budget.
 */
import type { ActiveSession } from './active-session.js'

/** A heap string's header (map, hash, length); its characters follow, the whole rounded up to 8. */
const STRING_HEADER = 16
/** An object's map, properties and elements pointers; its fields follow. */
const OBJECT_HEADER = 24
/** An array's object and its separate backing store's header. */
const ARRAY_HEADER = 48
const FIELD = 8
/** A number that is not a small integer is boxed. */
const HEAP_NUMBER = 16
/** A Buffer's typed-array object and its share of the array buffer it views. */
const BUFFER_HEADER = 96
/**
 * What every entry costs beyond the session's own values: the cache's entry record and its slots in
 * the cache's two maps (by handle, by user), and what a session's fixed fields (its version and
 * times) box. Calibrated: see the module comment.
 */
export const ENTRY_OVERHEAD = 350

const align = (bytes: number) => Math.ceil(bytes / 8) * 8

// A string that holds any character beyond Latin-1 keeps two bytes per character.
const TWO_BYTE = /[^\u0000-\u00ff]/ // eslint-disable-line no-control-regex

function sizeOf (value: unknown): number {
  switch (typeof value) {
    case 'string':
      return align(STRING_HEADER + value.length * (TWO_BYTE.test(value) ? 2 : 1))
    case 'number':
      return Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? 0 : HEAP_NUMBER
    case 'object': {
      if (value === null) return 0
      if (ArrayBuffer.isView(value)) return BUFFER_HEADER + align(value.byteLength)
      if (Array.isArray(value)) {
        let bytes = ARRAY_HEADER + FIELD * value.length
        for (const item of value) bytes += sizeOf(item)
        return bytes
      }
      let bytes = OBJECT_HEADER
      for (const key in value) bytes += FIELD + sizeOf((value as Record<string, unknown>)[key])
      return bytes
    }
    default:
      // Booleans and undefined are shared constants: only the field that points at them counts.
      return 0
  }
}

/** Estimated heap bytes of one cached session: its strings (tokens, claims, meta), objects and key, plus the entry's fixed cost. */
export function estimateSessionBytes (session: ActiveSession): number {
  return ENTRY_OVERHEAD + sizeOf(session)
}
