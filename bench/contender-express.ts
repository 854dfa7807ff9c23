/**
 * Contender (c): the stack most Node users assemble for a BFF. Express,
 * express-session with connect-redis 8 on ioredis (the session is read from
 * Redis on every request, and touched, as the defaults do), and
 * http-proxy-middleware adding the session's access token.
 *
 * `POST /login` stands in for an OIDC callback: it signs the caller in as alice
 * with tokens the size of real ones, so the session weighs what a real one does.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type NextFunction, type Request, type Response } from 'express'
import session from 'express-session'
import { RedisStore } from 'connect-redis'
import { Redis } from 'ioredis'
import { createProxyMiddleware } from 'http-proxy-middleware'
import { announceReady, closeOnStop, requiredEnv } from './child-side.js'

declare module 'express-session' {
  interface SessionData {
    sub: string
    roles: string[]
    accessToken: string
    refreshToken: string
    idToken: string
  }
}

const redis = new Redis(requiredEnv('BENCH_REDIS_URL'))
// As long as the gateway's, so every contender's upstream request weighs the same.
const accessToken = requiredEnv('BENCH_TOKEN')
const app = express()
app.disable('x-powered-by')
app.use(session({
  store: new RedisStore({ client: redis, prefix: 'bench-express:' }),
  secret: randomBytes(32).toString('base64url'),
  name: 'sid',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax', secure: false, maxAge: 30 * 60_000 },
}))

app.post('/login', (req, res, next) => {
  // A new id at sign-in, as any careful app does against session fixation.
  req.session.regenerate(error => {
    if (error) return next(error)
    req.session.sub = 'alice'
    req.session.roles = ['user']
    req.session.accessToken = accessToken
    req.session.refreshToken = randomBytes(32).toString('base64url')
    req.session.idToken = randomBytes(700).toString('base64url')
    res.status(204).end()
  })
})

function requireUser (req: Request, res: Response, next: NextFunction): void {
  if (!req.session.accessToken) {
    res.status(401).json({ error: 'unauthenticated', message: 'sign in first' })
    return
  }
  if (!req.session.roles?.includes('user')) {
    res.status(403).json({ error: 'forbidden', message: 'not allowed' })
    return
  }
  next()
}

app.use('/api', requireUser, createProxyMiddleware<Request, Response>({
  target: requiredEnv('BENCH_UPSTREAM'),
  // Without an agent, http-proxy opens a connection per request, sends `Connection: close`, and copies
  // the upstream's `Connection: close` to the browser: every request would pay two TCP handshakes.
  agent: new Agent({ keepAlive: true }),
  on: {
    proxyReq (proxyReq, req) {
      proxyReq.setHeader('authorization', `Bearer ${req.session.accessToken ?? ''}`)
      proxyReq.removeHeader('cookie')
    },
  },
}))

const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  announceReady(`http://127.0.0.1:${port}`)
})
closeOnStop(async () => {
  await new Promise<void>(resolve => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  await redis.quit()
})
