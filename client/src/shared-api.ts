/** What both entry points export: the events, the error, the JSON helpers and the user. */
export type { AuthState, BffEvents, SignedInEvent, SignedOutEvent, StepUpEvent } from './auth-state.js'
export { BffError } from './bff-error.js'
export type { BffClientCore } from './client-core.js'
export type { JsonCalls, JsonInit } from './json-calls.js'
export type { LoginOptions, Prompt } from './login-options.js'
export type { SilentLoginError, SilentLoginResult } from './silent-login.js'
export type { BffUser } from './user.js'
