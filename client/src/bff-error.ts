/**
 * The one error type the library throws. `code` is the gateway's `error`
 * field (`unauthenticated`, `forbidden`, `step_up_required`, `csrf`, …) or one
 * of the library's own codes for what went wrong on this side of the wire
 * (`state_mismatch`, `login_cancelled`, `invalid_response`), so callers switch
 * on one stable string either way.
 */
export class BffError extends Error {
  override readonly name = 'BffError'
  /** The HTTP status, or 0 when no answer of the gateway is involved. */
  readonly status: number
  readonly code: string
  /** For `step_up_required`: the `/bff/login` URL that raises the session's assurance. */
  readonly loginUrl?: string

  constructor (code: string, message: string, status = 0, loginUrl?: string) {
    super(message)
    this.code = code
    this.status = status
    if (loginUrl !== undefined) this.loginUrl = loginUrl
  }
}

/** The gateway's JSON error body, `{ error, message, loginUrl? }`. */
export interface ErrorBody {
  error?: string
  message?: string
  loginUrl?: string
}

/** Reads an error body without consuming the response the caller gets back. */
export async function errorBodyOf (response: Response): Promise<ErrorBody> {
  if (!(response.headers.get('content-type') ?? '').includes('json')) return {}
  try {
    const body: unknown = await response.clone().json()
    return typeof body === 'object' && body !== null ? body as ErrorBody : {}
  } catch {
    return {}
  }
}

export async function errorFrom (response: Response): Promise<BffError> {
  const body = await errorBodyOf(response)
  return new BffError(
    typeof body.error === 'string' ? body.error : 'http_error',
    typeof body.message === 'string' ? body.message : `the gateway answered ${response.status}`,
    response.status,
    typeof body.loginUrl === 'string' ? body.loginUrl : undefined
  )
}
