// The simulated app's redirect URI. The gateway sends the "system browser"
// here with `?code=…&state=…` (or `?error=…&state=…`); on a phone the
// operating system would hand that URL to the app. This page hands it to the
// app's page (native.html) over a BroadcastChannel, and closes.
import { REDIRECT_CHANNEL } from './popup-auth-session.js'

const channel = new BroadcastChannel(REDIRECT_CHANNEL)
channel.postMessage({ url: window.location.href })
channel.close()
// The handoff code is single-use and redeemable only with the app's PKCE verifier; still, keep it out of this window's history.
window.history.replaceState(null, '', window.location.pathname)
window.close()
document.getElementById('done').hidden = false
