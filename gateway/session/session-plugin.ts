/**
 * Binds sessions to requests: `request.loadSession()` reads the cookie (or a
 * native app's `Authorization: Session` credential with its DPoP proof) once
 * per request (memoised), and `reply.setSessionCookie` / `clearSessionCookie`
 * write the cookie with exactly the contract's attributes.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { ActiveSession } from './sessions.js'
import { isDeviceBound } from './active-session.js'
import { bindingMismatch, type BindingMismatch, type BindingRules } from './session-binding.js'
import { createNativeSessionReader, sessionCredentialOf } from './native-credential.js'
import { createDpopProofChecker } from './dpop-proof.js'

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The request's session (cookie → cache or store, bound to its client, its activity recorded),
     * or undefined; read once per request and remembered. Answers without a promise when no I/O is
     * needed (a trusted cached session, nothing to record), which is most API calls.
     * Rejects (or throws) SessionStoreUnavailable when the store is down, and InvalidDpopProof
     * when a native credential comes without a good proof.
     */
    loadSession (): ActiveSession | undefined | Promise<ActiveSession | undefined>
    /** Replaces the remembered session (after a refresh, or with undefined once ended). */
    useSession (session: ActiveSession | undefined): void
    /** Whether `bffSessionValue` holds this request's answer yet. */
    bffSessionKnown: boolean
    bffSessionValue: ActiveSession | null
    /** The read in progress, shared by whoever asks while it runs. */
    bffSessionPending: Promise<ActiveSession | undefined> | null
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
  /** PUBLIC_URL: what a native request's DPoP proof names as its URL (`htu`). */
  publicUrl: string
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

  app.decorateRequest('bffSessionKnown', false)
  app.decorateRequest('bffSessionValue', null)
  app.decorateRequest('bffSessionPending', null)
  app.decorateRequest('bffCookieMaxAge', null)

  const { binding } = options
  const boundElsewhere = (session: ActiveSession, request: FastifyRequest) =>
    bindingMismatch(session.meta, { ip: request.ip, userAgent: request.headers['user-agent'] ?? '' }, binding.rules)

  function remember (request: FastifyRequest, session: ActiveSession | undefined): ActiveSession | undefined {
    request.bffSessionKnown = true
    request.bffSessionPending = null
    request.bffSessionValue = session ?? null
    return session
  }

  const readNative = createNativeSessionReader({
    sessions,
    proofs: createDpopProofChecker({ publicUrl: options.publicUrl, replayClaims: app.replayClaims }),
  })

  /** The loaded session, checked against its client and with its activity recorded. */
  function settle (request: FastifyRequest, session: ActiveSession | undefined, fromHeader: boolean): ActiveSession | undefined | Promise<ActiveSession | undefined> {
    if (!session) return remember(request, undefined)
    // A device-bound session is good only with its key's proof, which a cookie does not carry.
    if (!fromHeader && isDeviceBound(session)) return remember(request, undefined)
    const mismatch = binding.mode === 'off' ? undefined : boundElsewhere(session, request)
    if (mismatch) {
      reportMismatch(session, mismatch, binding.mode === 'revoke')
      if (binding.mode === 'revoke') {
        return app.revocation.revoke({ session, reason: 'binding' }).then(() => remember(request, undefined))
      }
    }
    if (!sessions.touchDue(session)) return remember(request, session)
    return sessions.touch(session).then((touched) => {
      if (touched.outcome === 'ended') return remember(request, undefined)
      if (!fromHeader && touched.outcome === 'recorded') request.bffCookieMaxAge = touched.maxAgeSeconds
      return remember(request, session)
    })
  }

  function loadSession (this: FastifyRequest): ActiveSession | undefined | Promise<ActiveSession | undefined> {
    if (this.bffSessionKnown) return this.bffSessionValue ?? undefined
    if (this.bffSessionPending) return this.bffSessionPending
    // One header lookup decides the carrier: a native app's credential (with its proof) or the
    // cookie, never both; other Authorization schemes leave the cookie in charge.
    const authorization = this.headers.authorization
    const credential = authorization === undefined ? undefined : sessionCredentialOf(authorization)
    const fromHeader = credential !== undefined
    const loaded = fromHeader
      ? readNative(credential, { method: this.method, url: this.url, proof: this.headers.dpop })
      : sessions.load(this.cookies[cookieName])
    const settled = loaded instanceof Promise ? loaded.then((session) => settle(this, session, fromHeader)) : settle(this, loaded, fromHeader)
    if (settled instanceof Promise) {
      this.bffSessionPending = settled
      // A failed read is not remembered: the request fails with it, and nothing else asks.
      settled.catch(() => { this.bffSessionPending = null })
    }
    return settled
  }
  // Tracing (when on): a `session.load` span, only for a load that reads or writes the store.
  app.decorateRequest('loadSession', app.tracing?.traceSessionLoad(loadSession) ?? loadSession)

  app.decorateRequest('useSession', function (this: FastifyRequest, session: ActiveSession | undefined) {
    remember(this, session)
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
