/**
 * Contender (b): the floor for any Fastify-based gateway. A bare
 * @fastify/http-proxy with default options that adds a static bearer token
 * (BENCH_TOKEN, as long as a real one): no session, no policy, no cookie parsing.
 */
import Fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'
import { announceReady, closeOnStop, requiredEnv } from './child-side.js'

const authorization = `Bearer ${requiredEnv('BENCH_TOKEN')}`
const app = Fastify({ logger: false })
await app.register(httpProxy, {
  upstream: requiredEnv('BENCH_UPSTREAM'),
  prefix: '/api',
  rewritePrefix: '',
  replyOptions: {
    rewriteRequestHeaders: (_request, headers) => ({ ...headers, authorization }),
  },
})
const url = await app.listen({ host: '127.0.0.1', port: 0 })
announceReady(url)
closeOnStop(() => app.close())
