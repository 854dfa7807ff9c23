/**
 * `POST /bff/ssf/events`: the Shared Signals receiver (OpenID SSF 1.0, push
 * delivery per RFC 8935). An identity provider or a risk engine posts one
 * Security Event Token per request; the gateway verifies it and ends, marks
 * or disables what it names (security-events.ts). Reached server-to-server,
 * so it is exempt from the browser-facing CSRF checks: the signed token (and,
 * when configured, the push bearer token) is the authentication.
 *
 * Answers are RFC 8935's: 202 with no body when accepted, else
 * `{ err, description }` (400, or 401 without the push token).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { IdpUnavailable } from '../errors.js'
import { createBearerTokenCheck } from '../edge/bearer-token.js'
import { keyFor } from '../session/keys.js'
import { remoteKeySet } from './remote-key-set.js'
import { createSetVerifier, KeySetUnavailableError, SecurityEventTokenError } from './security-event-token.js'
import { applySecurityEvent } from './security-events.js'

export interface SsfReceiverOptions {
  /** SSF_ISSUER: the transmitter. */
  issuer: string
  /** SSF_JWKS_URI; undefined: the identity provider's keys. */
  jwksUri: string | undefined
  /** SSF_AUDIENCE: this gateway, as the transmitter names it. */
  audience: string
  /** SSF_PUSH_TOKEN, if the transmitter must send one. */
  pushToken: string | undefined
  /** OIDC_ISSUER: subjects name users by the subs it gives. */
  oidcIssuer: string
}

const SET_MEDIA_TYPE = 'application/secevent+jwt'
/** A SET is a few hundred bytes; RFC 8935 receivers may refuse large ones. */
const BODY_LIMIT = 64 * 1024

const refuse = (reply: FastifyReply, status: 400 | 401, err: string, description: string) =>
  reply.code(status).send({ err, description })

export default async function ssfReceiverRoute (app: FastifyInstance, options: SsfReceiverOptions) {
  const { oidc, audit, metrics, revocation, accounts, replayClaims } = app
  const { jwksUri } = options
  const verify = createSetVerifier({
    issuer: options.issuer,
    audience: options.audience,
    subjectIssuer: options.oidcIssuer,
    keys: remoteKeySet(jwksUri !== undefined ? async () => jwksUri : () => oidc.jwksUri()),
    claimJti: (jti, ttlMs) => replayClaims.claimOnce(keyFor.securityEventId(options.issuer, jti), ttlMs),
  })
  const pushTokenMatches = options.pushToken !== undefined ? createBearerTokenCheck(options.pushToken) : undefined

  // Every body is read as text here, whatever its type, so a wrong one gets RFC 8935's answer.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_request, body, done) => { done(null, body) })

  app.post<{ Body: unknown }>('/bff/ssf/events', { config: { crossSiteAllowed: true } }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    if (pushTokenMatches && !pushTokenMatches(request.headers.authorization)) {
      metrics.securityEvents.inc({ type: 'none', result: 'authentication_failed' })
      audit('security_event_refused', { reason: 'authentication_failed', ip: request.ip })
      reply.header('www-authenticate', 'Bearer')
      return refuse(reply, 401, 'authentication_failed', 'a valid push authorization token is required')
    }

    let verified
    try {
      const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
      if (mediaType !== SET_MEDIA_TYPE) throw new SecurityEventTokenError('invalid_request', `the body must be ${SET_MEDIA_TYPE}`)
      verified = await verify(typeof request.body === 'string' ? request.body.trim() : '')
    } catch (error) {
      if (error instanceof KeySetUnavailableError) throw new IdpUnavailable({ cause: error })
      if (!(error instanceof SecurityEventTokenError)) throw error
      metrics.securityEvents.inc({ type: 'none', result: error.code })
      audit('security_event_refused', { reason: error.code, detail: error.description, ip: request.ip })
      return refuse(reply, 400, error.code, error.description)
    }

    for (const event of verified.events) {
      const result = await applySecurityEvent(event, { revocation, accounts })
      metrics.securityEvents.inc({ type: event.type, result })
      const subject = event.subject.kind === 'unsupported'
        ? { subjectFormat: event.subject.format }
        : { sub: event.subject.sub, ...(event.subject.kind === 'session' ? { scope: 'idp_session' } : {}) }
      if (result === 'accepted' && event.type !== 'other') audit('security_event', { reason: event.type, jti: verified.jti, ...subject })
      else request.log.info({ jti: verified.jti, eventType: event.uri, ...subject }, 'security event ignored: not an event type or subject the gateway acts on')
    }
    return reply.code(202).send()
  })
}
