/**
 * Logger options: what must never reach a log line.
 */
import type { FastifyServerOptions } from 'fastify'

const SECRET_FIELDS = ['accessToken', 'refreshToken', 'idToken', 'csrfToken', 'access_token', 'refresh_token', 'id_token', 'logout_token', 'code_verifier', 'client_secret', 'password']

export function loggerOptions (level: string, name: string): FastifyServerOptions['logger'] {
  return {
    level,
    name,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]',
        'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
        ...SECRET_FIELDS, ...SECRET_FIELDS.map(f => `*.${f}`),
      ],
      censor: '[redacted]',
    },
    serializers: {
      // The query can carry an authorization code (/bff/callback) or a return path; the path is enough.
      req: (request: { method: string, url: string, ip?: string }) => ({
        method: request.method,
        path: request.url.split('?', 1)[0],
        ip: request.ip,
      }),
    },
  }
}
