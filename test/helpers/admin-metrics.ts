/**
 * One value from a gateway's Prometheus text (its admin listener's `/metrics`), for tests that
 * count what the gateway did.
 */
import { TEST_ADMIN_TOKEN } from './gateway.js'

/** The value of the first series whose line starts with `prefix` (a name, or a name and labels), 0 when none. */
export async function metricValue (adminUrl: string, prefix: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).text()
  const line = text.split('\n').find(l => l.startsWith(prefix))
  return line ? Number(line.split(' ').at(-1)) : 0
}
