// The demo SPA: talks only to the gateway, same origin, with the session cookie
// the browser sends by itself. It never sees a token.
const $ = (id) => document.getElementById(id)
let csrfToken = null

function show (result) {
  $('result').textContent = typeof result === 'string' ? result : JSON.stringify(result, null, 2)
}

function renderVisibility () {
  $('document-cookie').textContent = JSON.stringify(document.cookie)
  $('storage').textContent = String(localStorage.length + sessionStorage.length)
}

async function call (method, path, body) {
  const headers = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken ?? ''
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await response.text()
  let parsed = text
  try { parsed = JSON.parse(text) } catch {}
  if (response.status === 401) await refreshUser()
  show({ request: `${method} ${path}`, status: response.status, body: parsed })
  return response
}

async function refreshUser () {
  const response = await fetch('/bff/user', { credentials: 'same-origin' })
  const signedIn = response.ok
  $('signed-in').hidden = !signedIn
  $('signed-out').hidden = signedIn
  if (signedIn) {
    const user = await response.json()
    csrfToken = user.csrfToken
    $('user-name').textContent = user.name ?? user.sub
    $('user-sub').textContent = user.sub
    $('user-roles').textContent = user.roles.join(', ') || '(none)'
    $('expires-at').textContent = new Date(user.expiresAt).toLocaleString()
    $('idle-expires-at').textContent = new Date(user.idleExpiresAt).toLocaleTimeString()
  } else {
    csrfToken = null
  }
  renderVisibility()
}

$('sign-in').addEventListener('click', () => { window.location.href = '/bff/login?returnTo=/' })
$('get-orders').addEventListener('click', () => call('GET', '/api/orders'))
$('post-order').addEventListener('click', () => call('POST', '/api/orders', { item: 'Demo widget', quantity: 1 }))
$('delete-user').addEventListener('click', () => call('DELETE', '/api/admin/users/1'))
$('sign-out').addEventListener('click', async () => {
  const response = await call('POST', '/bff/logout')
  const { logoutUrl } = response.ok ? await response.clone().json() : {}
  await refreshUser()
  // Also end the identity provider's session, or the next sign-in would be silent.
  if (logoutUrl) window.location.href = logoutUrl
})

refreshUser()
