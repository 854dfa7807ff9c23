/**
 * `POST /bff/native/session`: a native app redeems the handoff code its
 * sign-in ended with (RFC 8252) for a session of its own, bound to the key
 * that signed the request's DPoP proof (RFC 9449). From then on the app sends
 * `Authorization: Session <credential>` and a proof per request (the session
 * plugin checks both); it never holds an identity provider's token.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { AccountDisabled, InvalidGrant, InvalidRequest } from '../errors.js'
import { createDpopProofChecker } from '../session/dpop-proof.js'

export interface NativeSessionRoutesOptions {
  publicUrl: string
}

interface ExchangeRequest {
  code: string
  codeVerifier: string
  deviceName?: string
}

// What the user would recognise in a device list; no controls, invisible formatting or line breaks.
const DEVICE_NAME = /^[^\p{C}\u2028\u2029]{1,64}$/u
// Longer than any real code or verifier; anything longer is refused without hashing it.
const MAX_FIELD_LENGTH = 256

function exchangeRequestOf (body: unknown): ExchangeRequest {
  if (typeof body !== 'object' || body === null) throw new InvalidRequest('Send a JSON object { code, code_verifier, deviceName? }')
  const { code, code_verifier: codeVerifier, deviceName } = body as Record<string, unknown>
  if (typeof code !== 'string' || code === '' || code.length > MAX_FIELD_LENGTH) throw new InvalidRequest('code is required')
  if (typeof codeVerifier !== 'string' || codeVerifier === '' || codeVerifier.length > MAX_FIELD_LENGTH) throw new InvalidRequest('code_verifier is required')
  if (deviceName !== undefined && (typeof deviceName !== 'string' || !DEVICE_NAME.test(deviceName))) {
    throw new InvalidRequest('deviceName must be 1 to 64 printable characters')
  }
  return { code, codeVerifier, ...(deviceName !== undefined ? { deviceName } : {}) }
}

async function nativeSessionRoutes (app: FastifyInstance, options: NativeSessionRoutesOptions) {
  const { audit, sessions, handoffCodes } = app
  const proofs = createDpopProofChecker({ publicUrl: options.publicUrl, replayClaims: app.replayClaims })

  app.post('/bff/native/session', { bodyLimit: 4096 }, async (request, reply) => {
    // The proof first: the key it names is what the session will be bound to.
    const jkt = await proofs.check(request.headers.dpop, request)
    const exchange = exchangeRequestOf(request.body)
    const signedIn = await handoffCodes.redeem(exchange.code, exchange.codeVerifier)
    if (!signedIn) {
      audit('login_failed', { reason: 'invalid_grant', client: 'native', ip: request.ip })
      throw new InvalidGrant()
    }
    const { session, cookieValue } = await sessions.create({
      ...signedIn.identity,
      ip: request.ip,
      userAgent: request.headers['user-agent'] ?? '',
      dpopJkt: jkt,
      ...(exchange.deviceName !== undefined ? { deviceName: exchange.deviceName } : {}),
    }, signedIn.secrets)
    // Disabled while this sign-in was finishing: as at the browser's callback, the disable may have
    // looked for the user's sessions before this one was indexed, so it is ended here instead.
    if (await app.accounts.isDisabled(session.meta.sub)) {
      await app.revocation.revoke({ session, reason: 'account_disabled' })
      audit('login_failed', { reason: 'account_disabled', sub: session.meta.sub, ip: request.ip, client: 'native' })
      throw new AccountDisabled()
    }
    audit('login', { sub: session.meta.sub, session: session.handle, ip: request.ip, client: 'native' })
    reply.header('cache-control', 'no-store')
    return {
      session: cookieValue,
      expiresAt: new Date(session.meta.absoluteExpiresAt).toISOString(),
      idleExpiresAt: new Date(session.idleExpiresAt).toISOString(),
    }
  })
}

export default fp(nativeSessionRoutes, { name: 'bff-native-session-routes', dependencies: ['bff-session', 'bff-session-store', 'bff-observability'] })
