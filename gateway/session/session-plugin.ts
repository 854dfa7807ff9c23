/**
 * Binds sessions to requests: `request.loadSession()` reads the cookie once per
 * request (memoised), and `reply.setSessionCookie` / `clearSessionCookie` write
 * it with exactly the contract's attributes.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { ActiveSession } from './sessions.js'
import { bindingMismatch, type BindingMismatch, type BindingRules } from './session-binding.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's session, or undefined; throws SessionStoreUnavailable when the store is down. */
    loadSession (): Promise<ActiveSession | undefined>
    /**
     * The request's session when it is at hand without any I/O (a trusted cached session, nothing
     * to record), else undefined: then `loadSession()` decides. Lets the hot path skip the promises.
     */
    cachedSession (): ActiveSession | undefined
    /** Replaces the memoised session (after a refresh, or with undefined once destroyed). */
    useSession (session: ActiveSession | undefined): void
    bffSession: Promise<ActiveSession | undefined> | null
    /** What `bffSession` resolved to, once it has. */
    bffSessionValue: ActiveSession | null
    bffCookieMaxAge: number | null
  }
  interface FastifyReply {
    setSessionCookie (value: string, maxAgeSeconds: number): FastifyReply
    clearSessionCookie (): FastifyReply
  }
}

export interface SessionPluginOptions {
  cookieName: string
  secure: boolean
  sameSite: 'lax' | 'strict'
  binding: { mode: 'off' | 'log' | 'revoke', rules: BindingRules }
}

async function sessionPlugin (app: FastifyInstance, options: SessionPluginOptions) {
  const { sessions, audit } = app
  const reportMismatch = (session: ActiveSession, mismatch: BindingMismatch, revoked: boolean) => audit('binding_mismatch', {
    reason: mismatch, sub: session.meta.sub, session: session.handle, action: revoked ? 'revoked' : 'logged',
  })
  const { cookieName } = options
  const attributes: CookieSerializeOptions = {
    httpOnly: true,
    secure: options.secure,
    sameSite: options.sameSite,
    path: '/',
  }

  app.decorateRequest('bffSession', null)
  app.decorateRequest('bffSessionValue', null)
  app.decorateRequest('bffCookieMaxAge', null)

  const { binding } = options
  const boundElsewhere = (session: ActiveSession, request: FastifyRequest) =>
    bindingMismatch(session.meta, { ip: request.ip, userAgent: request.headers['user-agent'] ?? '' }, binding.rules)

  app.decorateRequest('cachedSession', function () {
    if (this.bffSessionValue !== null) return this.bffSessionValue
    if (this.bffSession !== null) return undefined
    const session = sessions.peek(this.cookies[cookieName])
    // A binding mismatch is for loadSession to log or act on.
    if (!session || (binding.mode !== 'off' && boundElsewhere(session, this))) return undefined
    // No promise here: making one on this path made V8 keep every request's objects into the old
    // generation, as @fastify/helmet's per-reply closure did (bench/README.md). loadSession makes one
    // if anybody asks.
    this.bffSessionValue = session
    return session
  })

  app.decorateRequest('loadSession', function () {
    if (this.bffSession === null && this.bffSessionValue !== null) this.bffSession = Promise.resolve(this.bffSessionValue)
    this.bffSession ??= (async () => {
      const session = await sessions.load(this.cookies[cookieName])
      if (!session) return undefined
      if (binding.mode !== 'off') {
        const mismatch = boundElsewhere(session, this)
        if (mismatch) {
          reportMismatch(session, mismatch, binding.mode === 'revoke')
          if (binding.mode === 'revoke') {
            await app.revocation.revoke({ session, reason: 'binding' })
            return undefined
          }
        }
      }
      this.bffCookieMaxAge = (await sessions.touch(session)) ?? null
      this.bffSessionValue = session
      return session
    })()
    return this.bffSession
  })

  app.decorateRequest('useSession', function (session: ActiveSession | undefined) {
    this.bffSession = Promise.resolve(session)
    this.bffSessionValue = session ?? null
    if (!session) this.bffCookieMaxAge = null
  })

  // Writing the cookie explicitly supersedes the activity refresh below.
  app.decorateReply('setSessionCookie', function (this: FastifyReply, value: string, maxAgeSeconds: number) {
    this.request.bffCookieMaxAge = null
    return this.setCookie(cookieName, value, { ...attributes, maxAge: maxAgeSeconds })
  })

  app.decorateReply('clearSessionCookie', function (this: FastifyReply) {
    this.request.bffCookieMaxAge = null
    return this.clearCookie(cookieName, attributes)
  })

  // Activity extended the session's idle life: extend the cookie's too, never beyond the session.
  app.addHook('onSend', (request, reply, payload, done) => {
    const value = request.cookies[cookieName]
    if (request.bffCookieMaxAge !== null && value) {
      reply.setSessionCookie(value, request.bffCookieMaxAge)
    }
    done(null, payload)
  })
}

export default fp(sessionPlugin, { name: 'bff-session', dependencies: ['@fastify/cookie', 'bff-session-store', 'bff-observability'] })
