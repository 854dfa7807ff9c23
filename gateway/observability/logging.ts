/**
 * Logger options: what must never reach a log line, per-request loggers that
 * cost nothing until a request writes a line, the request's id (and trace) on
 * every line written during it, and one access line per request.
 */
import { LogController, type FastifyBaseLogger, type FastifyLoggerOptions, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { currentRequestFields, type RequestLogFields } from './request-scope.js'

const SECRET_FIELDS = ['accessToken', 'refreshToken', 'idToken', 'csrfToken', 'apiTokens', 'dpopKey', 'client_assertion', 'subject_token', 'access_token', 'refresh_token', 'id_token', 'logout_token', 'code_verifier', 'client_secret', 'password']

/** Where log lines go: stdout unless a test reads them. */
export type LogStream = NonNullable<FastifyLoggerOptions['stream']>

/** Marks the loggers made for one request, which carry its fields as bindings already. */
const REQUEST_LOGGER = Symbol('bff.requestLogger')
const NO_FIELDS: object = Object.freeze({})

/**
 * A line written during a request through a logger that does not know it (the app's, as audit
 * events and shared resources use) gets the request's id, and trace, from the request scope.
 */
function requestFieldsMixin (_mergeObject: object, _level: number, logger: object): object {
  if (Reflect.get(logger, REQUEST_LOGGER) === true) return NO_FIELDS
  return currentRequestFields() ?? NO_FIELDS
}

/** pino's default merge writes into the mixin's object, here the request's own fields: merge into a copy. */
function mergeRequestFields (mergeObject: object, mixinObject: object): object {
  return mixinObject === NO_FIELDS ? mergeObject : { ...mixinObject, ...mergeObject }
}

export function loggerOptions (level: string, name: string, stream?: LogStream): FastifyServerOptions['logger'] {
  return {
    level,
    name,
    ...(stream ? { stream } : {}),
    mixin: requestFieldsMixin,
    mixinMergeStrategy: mergeRequestFields,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'req.headers.dpop', 'res.headers["set-cookie"]',
        'headers.authorization', 'headers.cookie', 'headers["set-cookie"]',
        ...SECRET_FIELDS, ...SECRET_FIELDS.map(f => `*.${f}`),
        // ioredis puts a failed command's arguments on its errors: AUTH's password, keys naming session handles.
        '*.command.args',
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

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>
type LogArgs = [obj: unknown, msg?: string, ...rest: unknown[]]
type ChildLoggerFactory = NonNullable<FastifyServerOptions['childLoggerFactory']>

// pino's standard levels, least severe first; `silent` (or anything else) enables none.
const LEVEL_ORDER: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']

function thresholdOf (level: string): number {
  const rank = LEVEL_ORDER.indexOf(level as Level)
  return rank === -1 ? Number.POSITIVE_INFINITY : rank
}

/**
 * A request's logger that makes its pino child on the first line it actually writes.
 * Fastify makes a child per request; with the redaction above (its `*.field` paths run
 * on every binding) that took over a microsecond per request even when, as at
 * LOG_LEVEL=warn, the request logs nothing.
 */
class LazyChildLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined
  #threshold: number
  #bindings: Bindings

  constructor (private readonly parent: FastifyBaseLogger, bindings: Bindings, private readonly options: ChildOptions) {
    this.#bindings = bindings
    this.#threshold = thresholdOf(options.level ?? parent.level)
  }

  get level (): string {
    return this.#child?.level ?? this.options.level ?? this.parent.level
  }

  set level (level: string) {
    this.#real().level = level
    this.#threshold = thresholdOf(level)
  }

  fatal (...args: LogArgs): void { this.#write('fatal', args) }
  error (...args: LogArgs): void { this.#write('error', args) }
  warn (...args: LogArgs): void { this.#write('warn', args) }
  info (...args: LogArgs): void { this.#write('info', args) }
  debug (...args: LogArgs): void { this.#write('debug', args) }
  trace (...args: LogArgs): void { this.#write('trace', args) }
  silent (): void {}

  child (bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }

  /** More fields for every line of this request; free until a line is written. */
  addBindings (bindings: Bindings): void {
    if (this.#child) this.#child = this.#child.child(bindings)
    else this.#bindings = { ...this.#bindings, ...bindings }
  }

  #real (): FastifyBaseLogger {
    if (!this.#child) {
      const child = this.parent.child(this.#bindings, this.options)
      // Its children inherit the mark (pino makes them with Object.create).
      Reflect.set(child, REQUEST_LOGGER, true)
      this.#child = child
    }
    return this.#child
  }

  #write (level: Level, args: LogArgs): void {
    if (thresholdOf(level) < this.#threshold) return
    const log = this.#real()[level] as (...args: LogArgs) => void
    log.apply(this.#child, args)
  }
}

export const lazyChildLoggerFactory: ChildLoggerFactory = (logger, bindings, options) => new LazyChildLogger(logger, bindings, options)

/**
 * Adds fields (its trace) to every line written during the request the caller runs for: through
 * the request's own logger (as bindings, still free until a line is written) and through any other
 * (its request scope).
 */
export function addRequestLogFields (request: FastifyRequest, fields: Omit<RequestLogFields, 'reqId'>): void {
  if (request.log instanceof LazyChildLogger) request.log.addBindings(fields)
  const scope = currentRequestFields()
  if (scope) Object.assign(scope, fields)
}

/**
 * One line per request, when its answer is done: method, path and client (the `req`
 * serializer above), status, and time taken. Fastify's default writes two per request,
 * "incoming request" and "request completed": twice the serialising and writing for what
 * one line says. Its other lines (route not found, stream errors) are kept.
 */
export class AccessLogController extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // At `warn` (the usual setting under load) the line is not even put together.
    if (!error && thresholdOf('info') < thresholdOf(reply.log.level)) return
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
