/**
 * Preloaded (`--import`) into a gateway process to run it on a wrong clock:
 * `Date.now()` and `new Date()` are off by CLOCK_OFFSET_MS, as on a host whose
 * clock drifted. Timers are untouched, as they are by a drifting wall clock.
 */
const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0)
const RealDate = Date
const realNow = RealDate.now.bind(RealDate)

class ShiftedDate extends RealDate {
  constructor (...args: ConstructorParameters<DateConstructor> | []) {
    if (args.length === 0) super(realNow() + offset)
    else super(...(args as ConstructorParameters<DateConstructor>))
  }

  static override now (): number {
    return realNow() + offset
  }
}

if (offset !== 0) globalThis.Date = ShiftedDate as DateConstructor
