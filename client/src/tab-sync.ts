/**
 * Sign-in and sign-out news shared by every tab of the origin over a
 * `BroadcastChannel`: a tab that learns something posts it, the others apply
 * it at once, without polling. Only news from this tab is posted, so nothing
 * echoes back and forth.
 */
import type { AuthStateMachine } from './auth-state.js'
import { isBffUser, type BffUser } from './user.js'

type TabMessage =
  | { type: 'signedIn', user: BffUser }
  | { type: 'signedOut', reason: string }

/** Starts sharing; returns the function that stops it. A no-op where `BroadcastChannel` is missing. */
export function shareAcrossTabs (auth: AuthStateMachine, channelName: string): () => void {
  if (typeof BroadcastChannel !== 'function') return () => {}
  const channel = new BroadcastChannel(channelName)
  const post = (message: TabMessage) => channel.postMessage(message)
  channel.onmessage = (event: MessageEvent<unknown>) => {
    // Only pages of this origin can post here, but the shape is checked all the same.
    const message = event.data as Partial<Record<string, unknown>> | null
    if (message?.type === 'signedIn' && isBffUser(message.user)) auth.signedIn(message.user, true)
    if (message?.type === 'signedOut' && typeof message.reason === 'string') auth.signedOut(message.reason, true)
  }
  const stopSignedIn = auth.on('signedIn', (event) => {
    if (!event.fromOtherTab) post({ type: 'signedIn', user: event.user })
  })
  const stopSignedOut = auth.on('signedOut', (event) => {
    if (!event.fromOtherTab) post({ type: 'signedOut', reason: event.reason })
  })
  return () => {
    stopSignedIn()
    stopSignedOut()
    channel.close()
  }
}
