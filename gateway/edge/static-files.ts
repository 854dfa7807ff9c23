/**
 * The SPA's own files (`STATIC_DIR`), served at `/` on the gateway's origin.
 * They are public and read-only (GET/HEAD): a link from another site, or the
 * redirect to returnTo after a login at an IdP on another site, must open
 * them, so they are exempt from the cross-site refusal.
 */
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

export default async function staticFiles (app: FastifyInstance, options: { root: string }) {
  app.addHook('onRoute', (route) => { route.config = { ...route.config, crossSiteAllowed: true } })
  await app.register(fastifyStatic, { root: options.root, wildcard: true, index: 'index.html', cacheControl: false })
}
