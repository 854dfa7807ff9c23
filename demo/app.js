// The demo SPA. It talks only to its own origin (the gateway): /bff/* for the
// session, /api/* for the API. The browser sends the HttpOnly session cookie by
// itself; no token ever reaches this code. No inline script or style anywhere,
// so the gateway's strict Content-Security-Policy applies unchanged.

const $ = (id) => document.getElementById(id)

/** Read from /bff/user; sent back as X-CSRF-Token on every state-changing call. Memory only. */
let csrfToken = null

class SignedOut extends Error {}

/**
 * Every call of the page goes through here. A 401 from anywhere means the
 * session is gone (signed out in another tab, revoked by an operator, expired):
 * show the sign-in screen and stop.
 */
async function request (method, path, body) {
  const headers = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken ?? ''
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  let data = text
  try { data = JSON.parse(text) } catch {}
  if (response.status === 401) {
    showSignedOut(`Your session has ended (${method} ${path} answered 401). Sign in again to continue.`)
    throw new SignedOut()
  }
  return { status: response.status, data, servedBy: response.headers.get('x-served-by') }
}

/** Runs an action and swallows the SignedOut that request() already handled. */
function action (fn) {
  return (event) => {
    fn(event).catch((error) => {
      if (!(error instanceof SignedOut)) showResult('(network)', 0, String(error))
    })
  }
}

function show (view) {
  $('loading').hidden = true
  $('signed-in').hidden = view !== 'signed-in'
  $('signed-out').hidden = view !== 'signed-out'
  $('account').hidden = view !== 'signed-in'
}

function showSignedOut (reason) {
  csrfToken = null
  const notice = $('signed-out-reason')
  notice.textContent = reason ?? ''
  notice.hidden = !reason
  show('signed-out')
  renderVisibility()
}

function formatTime (iso, withDate = true) {
  if (!iso) return '–'
  const date = new Date(iso)
  return withDate ? date.toLocaleString() : date.toLocaleTimeString()
}

function renderUser (user) {
  csrfToken = user.csrfToken
  $('account-name').textContent = user.name ?? user.sub
  $('user-name').textContent = user.name ?? '–'
  $('user-sub').textContent = user.sub
  $('user-email').textContent = user.email ?? '–'
  const roles = $('user-roles')
  roles.replaceChildren(...(user.roles.length ? user.roles : ['(none)']).map(role => {
    const chip = document.createElement('span')
    chip.className = 'chip'
    chip.textContent = role
    return chip
  }))
  $('expires-at').textContent = formatTime(user.expiresAt)
  $('idle-expires-at').textContent = formatTime(user.idleExpiresAt, false)
}

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

function showResult (label, status, data, servedBy) {
  const result = $('result')
  result.dataset.request = label
  result.dataset.status = String(status)
  const badge = $('result-status')
  badge.textContent = status ? String(status) : 'error'
  badge.className = `status ${status >= 200 && status < 300 ? 'ok' : 'bad'}`
  $('result-request').textContent = label
  $('result-served-by').textContent = servedBy ? `served by ${servedBy}` : ''
  $('result-body').textContent = typeof data === 'string' ? data : JSON.stringify(data, null, 2)
}

const SAMPLE_ORDER = { item: 'Demo widget', quantity: 1 }

async function callApi (event) {
  const { method, path } = event.currentTarget.dataset
  const label = `${method} ${path}`
  const result = $('result')
  delete result.dataset.status
  result.dataset.request = label
  const { status, data, servedBy } = await request(method, path, method === 'POST' ? SAMPLE_ORDER : undefined)
  showResult(label, status, data, servedBy)
}

/** "Chrome on Linux" from a User-Agent string; the full string is in the tooltip. */
function describeAgent (userAgent) {
  const ua = userAgent || ''
  const browser = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['HeadlessChrome/', 'Headless Chrome'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']]
    .find(([needle]) => ua.includes(needle))?.[1]
  const os = [['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'], ['Windows', 'Windows'], ['Linux', 'Linux']]
    .find(([needle]) => ua.includes(needle))?.[1]
  if (browser && os) return `${browser} on ${os}`
  return browser ?? os ?? (ua ? ua.slice(0, 40) : 'Unknown device')
}

async function loadDevices (message) {
  const { status, data } = await request('GET', '/bff/sessions')
  const list = $('devices')
  if (status !== 200) {
    $('devices-message').textContent = `Could not list devices (${status}).`
    return
  }
  const template = $('device-template')
  list.replaceChildren(...data.sessions.map(session => {
    const item = template.content.firstElementChild.cloneNode(true)
    item.dataset.id = session.id
    item.dataset.current = String(session.current)
    const agent = item.querySelector('.device-agent')
    agent.textContent = describeAgent(session.userAgent)
    agent.title = session.userAgent
    item.querySelector('.device-current').hidden = !session.current
    item.querySelector('.device-details').textContent =
      `${session.ip || 'unknown address'} · signed in ${formatTime(session.createdAt)} · last seen ${formatTime(session.lastSeenAt)}`
    const button = item.querySelector('.device-sign-out')
    // This device signs out with the main button, which also ends the identity provider's session.
    button.hidden = session.current
    button.addEventListener('click', action(() => signOutDevice(session.id)))
    return item
  }))
  const others = data.sessions.filter(session => !session.current).length
  $('sign-out-others').disabled = others === 0
  $('devices-message').textContent = message ??
    (others === 0 ? 'Only this device is signed in.' : `${others} other device${others === 1 ? ' is' : 's are'} signed in.`)
}

async function signOutDevice (id) {
  const { status, data } = await request('DELETE', `/bff/sessions/${encodeURIComponent(id)}`)
  await loadDevices(status === 200 ? 'Signed out that device.' : `Could not sign out that device (${status} ${data.error ?? ''}).`)
}

async function signOutOthers () {
  const { status, data } = await request('DELETE', '/bff/sessions?others=true')
  await loadDevices(status === 200
    ? `Signed out ${data.revoked} other device${data.revoked === 1 ? '' : 's'}.`
    : `Could not sign out other devices (${status} ${data.error ?? ''}).`)
}

async function signOut () {
  const { status, data } = await request('POST', '/bff/logout')
  if (status !== 200) {
    showResult('POST /bff/logout', status, data)
    return
  }
  showSignedOut('You have signed out.')
  // Also end the identity provider's session, or the next sign-in would be silent.
  if (data.logoutUrl) window.location.assign(data.logoutUrl)
}

async function start () {
  const { status, data } = await request('GET', '/bff/user').catch((error) => {
    // A missing session on first load is the normal signed-out state, not an "ended" one.
    if (error instanceof SignedOut) showSignedOut()
    throw error
  })
  if (status !== 200) {
    showSignedOut(`The gateway answered ${status} (${data.error ?? 'error'}). Try again in a moment.`)
    return
  }
  renderUser(data)
  show('signed-in')
  renderVisibility()
  await loadDevices()
}

$('sign-in').addEventListener('click', () => { window.location.assign('/bff/login?returnTo=/') })
$('sign-out').addEventListener('click', action(signOut))
$('sign-out-others').addEventListener('click', action(signOutOthers))
$('refresh-devices').addEventListener('click', action(() => loadDevices()))
for (const button of document.querySelectorAll('button.call')) button.addEventListener('click', action(callApi))

action(start)()
