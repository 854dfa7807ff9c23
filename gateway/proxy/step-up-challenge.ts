/**
 * An upstream's step-up challenge (RFC 9470, OAuth 2.0 Step Up Authentication
 * Challenge): a 401 whose `WWW-Authenticate` says
 * `Bearer error="insufficient_user_authentication"`, with the `acr_values`
 * and/or `max_age` the token's sign-in would have needed.
 *
 * The header is read by a small scanner (RFC 9110 §11.6.1: schemes, then
 * `name=token` or `name="quoted string"` parameters), linear in its length and
 * forgiving of what it does not understand: it only has to find one
 * challenge's parameters, and anything else leaves the upstream's 401 as it is.
 */
import { ACR_VALUE } from '../auth/login-options.js'
import type { StepUpNeed } from '../auth/step-up.js'

/** Longer headers are not read: no upstream needs this much to ask for a step-up. */
const MAX_HEADER_LENGTH = 8192
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/
const MAX_AGE = /^\d{1,10}$/
/** RFC 9470 defines the challenge for Bearer tokens; RFC 9449 lets DPoP-bound ones use it too. */
const SCHEMES: ReadonlySet<string> = new Set(['bearer', 'dpop'])

interface Challenge {
  scheme: string
  params: Map<string, string>
}

const isBlank = (char: string | undefined) => char === ' ' || char === '\t'

/** The challenges of one header value, each with its parameters (names lower-cased; the first of a repeated name wins). */
function challengesOf (header: string): Challenge[] {
  const challenges: Challenge[] = []
  let current: Challenge | undefined
  let i = 0
  while (i < header.length) {
    while (i < header.length && (isBlank(header[i]) || header[i] === ',')) i += 1
    const start = i
    while (i < header.length && TOKEN_CHAR.test(header[i] as string)) i += 1
    if (i === start) {
      i += 1 // not a token (a token68's padding, stray punctuation): skip it
      continue
    }
    const name = header.slice(start, i).toLowerCase()
    let next = i
    while (isBlank(header[next])) next += 1
    if (header[next] !== '=' || current === undefined) {
      current = { scheme: name, params: new Map() }
      challenges.push(current)
      continue
    }
    i = next + 1
    while (isBlank(header[i])) i += 1
    let value = ''
    if (header[i] === '"') {
      i += 1
      while (i < header.length && header[i] !== '"') {
        if (header[i] === '\\') i += 1
        value += header[i] ?? ''
        i += 1
      }
      i += 1
    } else {
      const valueStart = i
      while (i < header.length && TOKEN_CHAR.test(header[i] as string)) i += 1
      value = header.slice(valueStart, i)
    }
    if (!current.params.has(name)) current.params.set(name, value)
  }
  return challenges
}

/**
 * The step-up an upstream's `WWW-Authenticate` asks for, or undefined when it asks for none.
 * Parameters that are not valid `acr_values` / `max_age` are left out (a fresh sign-in is then
 * all that can be asked for).
 */
export function insufficientUserAuthentication (header: string | string[] | undefined): StepUpNeed | undefined {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header]
  for (const value of values) {
    if (value.length > MAX_HEADER_LENGTH) continue
    const challenge = challengesOf(value).find(c => SCHEMES.has(c.scheme) && c.params.get('error') === 'insufficient_user_authentication')
    if (!challenge) continue
    const acrValues = challenge.params.get('acr_values')?.split(' ').filter(Boolean)
    const maxAge = challenge.params.get('max_age')
    return {
      ...(acrValues && acrValues.length > 0 && acrValues.every(acr => ACR_VALUE.test(acr)) ? { acrValues } : {}),
      ...(maxAge !== undefined && MAX_AGE.test(maxAge) ? { maxAge: Number(maxAge) } : {}),
    }
  }
  return undefined
}
