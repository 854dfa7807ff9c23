/**
 * How many commands the bench's Redis has processed, for "Redis commands per
 * 1 000 requests". Read before and after each slice of a gateway contender.
 *
 * INFO (the reads' own), PING and SCAN are left out: every gateway process on this Redis (up to four
 * in a run, each idle but the one under load) sends its invalidation channel's
 * heartbeat PING every second, and a scrape of a gateway's /metrics counts the
 * sessions with SCAN over the whole keyspace (every 15 s, a hundred SCANs and
 * more with 50 000 sessions). Neither is on the request path; counted, they
 * would drown what is.
 */
import { Redis } from 'ioredis'

// A read's INFO is counted by Redis only once it has answered: the next read sees it and leaves it out.
const NOT_ON_THE_REQUEST_PATH = ['info', 'ping', 'scan']

/** `total_commands_processed` less the calls of NOT_ON_THE_REQUEST_PATH, from one `INFO all`. */
export function requestPathCommands (info: string): number {
  const total = /^total_commands_processed:(\d+)/m.exec(info)
  if (!total) throw new Error('Redis INFO has no total_commands_processed')
  let left = Number(total[1])
  for (const command of NOT_ON_THE_REQUEST_PATH) {
    const calls = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)
    if (calls) left -= Number(calls[1])
  }
  return left
}

export interface RedisCommandCounter {
  /** Commands processed so far, INFO, PING and SCAN left out. */
  read (): Promise<number>
  close (): void
}

export function redisCommandCounter (redisUrl: string): RedisCommandCounter {
  let client: Redis | undefined
  return {
    async read () {
      client ??= new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 })
      return requestPathCommands(await client.info('all'))
    },
    close () {
      client?.disconnect()
      client = undefined
    },
  }
}
