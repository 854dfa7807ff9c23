/**
 * Preloaded (`--import`) into a gateway process for tests of a fatal error:
 * on SIGUSR2 the process throws an exception nothing catches, as a bug would.
 */
process.on('SIGUSR2', () => {
  setImmediate(() => { throw new Error('a bug nobody caught (test)') })
})
