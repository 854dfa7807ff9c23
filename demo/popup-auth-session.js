// The simulated app's "system browser": a popup window. A real app opens
// ASWebAuthenticationSession or a Custom Tab, and the operating system hands
// it the redirect. Here the redirect URI is a page of the demo
// (native-callback.html), which hands its URL over on a BroadcastChannel:
// the gateway's pages are `Cross-Origin-Opener-Policy: same-origin`, so once
// the popup has been to the identity provider it is in another browsing
// context group, and neither window can reach the other through `opener`.

export const REDIRECT_CHANNEL = 'bff-demo-native-redirect'

const withoutQuery = (url) => url.split(/[?#]/, 1)[0]

/**
 * `openAuthSession` for createNativeBffClient: opens the sign-in in a popup
 * and resolves with the redirect URL once the popup reaches `redirectUri`.
 * `cancel()` resolves the wait with nothing, as closing the system browser
 * would (the popup's `closed` cannot tell: see above).
 */
export function popupAuthSession () {
  let cancelWait = () => {}

  function openAuthSession (url, redirectUri) {
    const state = new URL(url).searchParams.get('state')
    return new Promise((resolve, reject) => {
      const channel = new BroadcastChannel(REDIRECT_CHANNEL)
      const finish = (redirectUrl) => {
        channel.close()
        cancelWait = () => {}
        resolve(redirectUrl)
      }
      channel.onmessage = ({ data }) => {
        // Any page of this origin can post here: only this sign-in's redirect ends the wait (the client checks `state` again).
        if (typeof data?.url !== 'string' || withoutQuery(data.url) !== redirectUri) return
        if (new URL(data.url).searchParams.get('state') !== state) return
        finish(data.url)
      }
      cancelWait = () => finish(null)
      if (!window.open(url, 'bff-demo-system-browser', 'popup,width=520,height=720')) {
        channel.close()
        reject(new Error('the browser blocked the sign-in window: allow pop-ups for this page and try again'))
      }
    })
  }

  return { openAuthSession, cancel: () => cancelWait() }
}
