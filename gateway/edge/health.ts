/**
 * `GET /healthz` on the public listener: 200 while the process is alive, even
 * while it sheds load (edge/load-shedding.ts) or drains for a shutdown.
 * Probes hit it every few seconds; it is logged only when something is wrong.
 */
import type { FastifyInstance } from 'fastify'

export default async function health (app: FastifyInstance) {
  app.get('/healthz', { logLevel: 'warn', config: { shedUnderPressure: false } }, async () => ({ status: 'ok' }))
}
