/**
 * CPU time a process has used so far, read from /proc (Linux), so the login
 * contenders can say where a sign-in's CPU goes: the driver, the IdP, the
 * gateway. On a 2-core machine that decides the rate more than any latency.
 */
import { readFile } from 'node:fs/promises'

/** USER_HZ: the unit of /proc/<pid>/stat's times, 100 on every Linux the bench runs on. */
const CLOCK_TICKS_PER_SECOND = 100

/** User plus system CPU milliseconds of the process (all its threads) so far; undefined when /proc cannot tell. */
export async function processCpuMs (pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined
  let stat: string
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line, 12th and 13th after the name.
  const ticks = Number(fields[11]) + Number(fields[12])
  return Number.isFinite(ticks) ? ticks * 1000 / CLOCK_TICKS_PER_SECOND : undefined
}
