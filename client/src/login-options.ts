/**
 * The options of `GET /bff/login` that both clients pass through (the
 * gateway validates them and forwards them to the IdP).
 */
import { queryOf, type QueryParams } from './query.js'

export type Prompt = 'none' | 'login' | 'consent' | 'select_account'

export interface LoginOptions {
  prompt?: Prompt
  /** Seconds: the IdP re-authenticates a user whose last login is older. */
  maxAge?: number
  /** Acceptable authentication context classes, most preferred first. */
  acrValues?: string | readonly string[]
  loginHint?: string
  uiLocales?: string | readonly string[]
}

const spaced = (value: string | readonly string[] | undefined) =>
  typeof value === 'string' || value === undefined ? value : value.join(' ')

export function loginParams (options: LoginOptions): QueryParams {
  return {
    prompt: options.prompt,
    max_age: options.maxAge,
    acr_values: spaced(options.acrValues),
    login_hint: options.loginHint,
    ui_locales: spaced(options.uiLocales),
  }
}

/** The login options a step-up `loginUrl` asks for, to start that login again from either client. */
export function loginOptionsFrom (loginUrl: string): LoginOptions {
  const query = queryOf(loginUrl)
  const options: LoginOptions = {}
  if (query.acr_values) options.acrValues = query.acr_values.split(' ')
  if (query.max_age && /^\d+$/.test(query.max_age)) options.maxAge = Number(query.max_age)
  if (query.prompt) options.prompt = query.prompt as Prompt
  if (query.login_hint) options.loginHint = query.login_hint
  if (query.ui_locales) options.uiLocales = query.ui_locales.split(' ')
  return options
}
