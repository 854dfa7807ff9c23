/**
 * The values of the security headers, worked out once at start-up: helmet's
 * set for pages and the gateway's own answers, a smaller set for API data.
 * `security-headers.ts` puts them on every answer.
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import helmet, { type HelmetOptions } from 'helmet'

const ONE_YEAR_SECONDS = 365 * 24 * 60 * 60

export type SecurityHeaders = Readonly<Record<string, string>>

/** For proxied API answers; `forward-headers.ts` keeps the upstream from replacing them. */
export const API_SECURITY_HEADERS: SecurityHeaders = Object.freeze({
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
})

export function securityHeaderOptions (publicUrl: string): HelmetOptions {
  const https = new URL(publicUrl).protocol === 'https:'
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    strictTransportSecurity: https ? { maxAge: ONE_YEAR_SECONDS, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    xFrameOptions: { action: 'deny' },
  }
}

/** The headers helmet sets with these options, as lower-case name → value. */
export function pageSecurityHeaders (options: HelmetOptions): SecurityHeaders {
  // helmet is Connect middleware: run it once against a response nobody sends, and read what it set.
  const response = new ServerResponse(new IncomingMessage(new Socket()))
  helmet(options)(response.req, response, (error?: unknown) => {
    if (error) throw error
  })
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(response.getHeaders())) {
    if (value !== undefined) headers[name] = String(value)
  }
  return Object.freeze(headers)
}
