// What both demo pages show, whichever client they use (the browser's, with
// the session cookie, or the simulated native app's, with a DPoP-bound
// credential): the user, the answers of the API, the user's devices. Every
// call goes through the client given; a 401 is the client's `signedOut` event,
// which each page handles itself.

export const $ = (id) => document.getElementById(id)

/** Shows the elements of one view (`data-view="signed-in"`, …) and hides the others. */
export function showView (name) {
  for (const element of document.querySelectorAll('[data-view]')) element.hidden = element.dataset.view !== name
}

/** Shows the signed-out view, with a notice saying why when there is one. */
export function showSignedOut (notice) {
  const element = $('signed-out-reason')
  element.textContent = notice ?? ''
  element.hidden = !notice
  showView('signed-out')
}

/** The notice for the client's `signedOut` event. */
export function signedOutNotice ({ reason, fromOtherTab }) {
  if (reason === 'logout') return fromOtherTab ? 'You signed out in another tab.' : 'You have signed out.'
  const where = fromOtherTab ? ' in another tab' : ''
  return `Your session has ended${where}: the gateway answered 401 ${reason}. Sign in again to continue.`
}

/** Runs an action from a button; a 401 is already the signedOut event, anything else shows in the result panel. */
export function action (fn) {
  return (event) => {
    fn(event).catch((error) => {
      if (error?.status !== 401) showResult('(failed)', error?.status ?? 0, String(error?.message ?? error))
    })
  }
}

export function formatTime (iso, withDate = true) {
  if (!iso) return '–'
  const date = new Date(iso)
  return withDate ? date.toLocaleString() : date.toLocaleTimeString()
}

export function renderUser (user) {
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

export function showResult (label, status, data, servedBy) {
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

async function bodyOf (response) {
  const text = await response.text()
  try { return JSON.parse(text) } catch { return text }
}

const SAMPLE_ORDER = { item: 'Demo widget', quantity: 1 }

/** The API buttons (`button.call[data-method][data-path]`): each answer, whatever its status, in the result panel. */
export function wireApiCalls (client) {
  const call = async (event) => {
    const { method, path } = event.currentTarget.dataset
    const label = `${method} ${path}`
    const result = $('result')
    delete result.dataset.status
    result.dataset.request = label
    const init = { method, headers: { accept: 'application/json' } }
    if (method === 'POST') {
      init.headers['content-type'] = 'application/json'
      init.body = JSON.stringify(SAMPLE_ORDER)
    }
    const response = await client.fetch(path, init)
    showResult(label, response.status, await bodyOf(response), response.headers.get('x-served-by'))
  }
  for (const button of document.querySelectorAll('button.call')) button.addEventListener('click', action(call))
}

/** "Chrome on Linux" from a User-Agent string (a native app's device name is shown as it is); the full string is in the tooltip. */
function describeAgent (userAgent) {
  const ua = userAgent || ''
  const browser = [['Edg/', 'Edge'], ['Firefox/', 'Firefox'], ['HeadlessChrome/', 'Headless Chrome'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']]
    .find(([needle]) => ua.includes(needle))?.[1]
  const os = [['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Mac OS X', 'macOS'], ['Windows', 'Windows'], ['Linux', 'Linux']]
    .find(([needle]) => ua.includes(needle))?.[1]
  if (browser && os) return `${browser} on ${os}`
  return browser ?? os ?? (ua ? ua.slice(0, 40) : 'Unknown device')
}

/**
 * The "My devices" card: the user's sessions (`GET /bff/sessions`), each
 * other one with a button that ends it, and "sign out other devices".
 * Returns `load(message)`, which lists them again.
 */
export function devicesCard (client) {
  const failure = (what, error) => `Could not ${what} (${error.status} ${error.code}).`

  async function load (message) {
    let data
    try {
      data = await client.get('/bff/sessions')
    } catch (error) {
      if (error.status !== 401) $('devices-message').textContent = failure('list devices', error)
      return
    }
    const template = $('device-template')
    $('devices').replaceChildren(...data.sessions.map(session => {
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
      // This device signs out with the main button, which ends the whole sign-in.
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
    try {
      await client.delete(`/bff/sessions/${encodeURIComponent(id)}`)
      await load('Signed out that device.')
    } catch (error) {
      if (error.status !== 401) await load(failure('sign out that device', error))
    }
  }

  async function signOutOthers () {
    try {
      const { revoked } = await client.delete('/bff/sessions?others=true')
      await load(`Signed out ${revoked} other device${revoked === 1 ? '' : 's'}.`)
    } catch (error) {
      if (error.status !== 401) await load(failure('sign out other devices', error))
    }
  }

  $('sign-out-others').addEventListener('click', action(signOutOthers))
  $('refresh-devices').addEventListener('click', action(() => load()))
  return { load }
}
