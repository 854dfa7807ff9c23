// A native app (React Native, say), simulated in this page with the client
// library's native half (@bff-gateway/client/native, bundled into vendor/):
//  - the system browser is a popup (popup-auth-session.js), and the app's
//    redirect URI is native-callback.html, listed in the gateway's
//    NATIVE_REDIRECT_URIS by scripts/demo.ts;
//  - the device key is a WebCrypto P-256 key made with `extractable: false`,
//    as in the Secure Enclave or Android Keystore: this page can sign with it,
//    never read it;
//  - the secure store is memory. A page has no Keychain, and the key lives in
//    memory too: a credential kept where a reload (or another script) could
//    find it would be worthless without the key it is bound to. So, like an
//    app that signs in at every start, a reload means signing in again.
import { createMemorySecureStore, createNativeBffClient, createWebCryptoKeyStore } from './vendor/bff-client-native.js'
import { popupAuthSession } from './popup-auth-session.js'
import { $, action, devicesCard, renderUser, showSignedOut, showView, signedOutNotice, wireApiCalls } from './view.js'

const REDIRECT_URI = `${window.location.origin}/native-callback.html`
const CREDENTIAL_KEY = 'bff.session'

const keyStore = createWebCryptoKeyStore()
const secureStore = createMemorySecureStore()
const systemBrowser = popupAuthSession()
const app = createNativeBffClient({
  baseUrl: window.location.origin,
  redirectUri: REDIRECT_URI,
  openAuthSession: systemBrowser.openAuthSession,
  keyStore,
  secureStore,
  storageKey: CREDENTIAL_KEY,
  deviceName: 'Native app demo',
})
const devices = devicesCard(app)

/** What the app keeps: the key (never its private half) and whether a credential is stored. */
async function renderHoldings () {
  const { privateKey } = await keyStore.keyPair()
  const { x } = await keyStore.publicJwk()
  $('device-key').textContent = `ECDSA P-256; private key extractable: ${privateKey.extractable}; public x ${x.slice(0, 12)}…`
  const stored = await secureStore.get(CREDENTIAL_KEY)
  $('credential').textContent = stored ? `opaque, ${JSON.parse(stored).session.length} characters, in memory` : 'none'
}

app.on('signedIn', ({ user }) => {
  renderUser(user)
  showView('signed-in')
  renderHoldings().catch(() => {})
  devices.load().catch(() => {})
})

// A 401 from any call (the session ended, was revoked, or the proof was refused), or the app's own logout.
app.on('signedOut', (event) => {
  const wasSignedIn = !$('signed-in').hidden
  showSignedOut(wasSignedIn ? signedOutNotice(event) : undefined)
})

async function signIn () {
  showView('waiting')
  try {
    await app.login() // the signedIn event shows the app
  } catch (error) {
    showSignedOut(error.code === 'login_cancelled' ? 'Sign-in cancelled.' : `Sign-in failed: ${error.code ?? error.message}.`)
  }
}

$('sign-in').addEventListener('click', () => { signIn() })
$('cancel-sign-in').addEventListener('click', () => systemBrowser.cancel())
// Ends the gateway's session and forgets the credential; the identity provider's session stays.
$('sign-out').addEventListener('click', action(() => app.logout()))
wireApiCalls(app)

// Nothing survives a reload, so this is the signed-out state; asked all the same, as an app would at start.
app.user().catch(() => showSignedOut())
