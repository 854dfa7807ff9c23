// The demo SPA, on the client library (@bff-gateway/client, bundled from
// client/src into vendor/). It talks only to its own origin (the gateway):
// /bff/* for the session, /api/* for the API. The browser sends the HttpOnly
// session cookie by itself, the library adds the CSRF token to changes and
// turns every 401 into a `signedOut` event; no token ever reaches this code.
// Tabs share what they learn (a sign-out, a sign-in) over a BroadcastChannel,
// so every open tab follows at once. No inline script or style anywhere, so
// the gateway's strict Content-Security-Policy applies unchanged.
import { createBffClient } from './vendor/bff-client-browser.js'
import { $, action, devicesCard, renderUser, showSignedOut, showView, signedOutNotice, wireApiCalls } from './view.js'

const bff = createBffClient()
const devices = devicesCard(bff)

/** The proof on the page: nothing a script could steal. */
function renderVisibility () {
  const cookie = document.cookie
  $('document-cookie').textContent = JSON.stringify(cookie)
  $('local-storage').textContent = `${localStorage.length} entries`
  $('session-storage').textContent = `${sessionStorage.length} entries`
  const clean = cookie === '' && localStorage.length === 0 && sessionStorage.length === 0
  const verdict = $('token-verdict')
  verdict.textContent = clean
    ? '✓ No token or session id is readable from this page.'
    : '✗ Something is readable from this page; a token must never be.'
  verdict.className = `verdict ${clean ? 'ok' : 'bad'}`
}

function signedOut (notice) {
  showSignedOut(notice)
  renderVisibility()
}

// Found here (the first /bff/user, a silent login) or in another tab (a login there).
bff.on('signedIn', ({ user }) => {
  renderUser(user)
  showView('signed-in')
  renderVisibility()
  devices.load().catch(() => {})
})

// A 401 from any call here, or news from another tab: a logout, a 401 there.
bff.on('signedOut', (event) => {
  // The first /bff/user of a visitor without a session is the ordinary signed-out state, not an ended session.
  const wasSignedIn = !$('signed-in').hidden
  signedOut(wasSignedIn || event.fromOtherTab ? signedOutNotice(event) : undefined)
})

async function signOut () {
  const { logoutUrl } = await bff.logout() // the signedOut event shows the sign-in screen, here and in every tab
  // Also end the identity provider's session, or the next sign-in would be silent.
  if (logoutUrl) window.location.assign(logoutUrl)
}

/** The page's first question: who is signed in, or, coming back from a silent login, what the IdP said. */
async function start () {
  const comingBackFromSilentLogin = new URL(window.location.href).searchParams.has('bff_silent')
  try {
    if (comingBackFromSilentLogin) {
      const result = await bff.silentLogin()
      if (!result.signedIn) signedOut(`Silent sign-in: the identity provider has no session to sign you in with (${result.error}).`)
    } else if (!await bff.user()) {
      signedOut()
    }
  } catch (error) {
    signedOut(`The gateway answered ${error.status ?? 'nothing'} (${error.code ?? error.message}). Try again in a moment.`)
  }
}

$('sign-in').addEventListener('click', () => bff.login({ returnTo: '/' }))
// Leaves for the IdP and comes back through redirects only: signed in if the IdP still has a session.
$('silent-sign-in').addEventListener('click', () => { bff.silentLogin({ returnTo: '/' }) })
$('sign-out').addEventListener('click', action(signOut))
wireApiCalls(bff)

start()
