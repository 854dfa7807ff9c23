/**
 * The identity provider's HTML pages: deliberately plain, no external assets,
 * so tests (and people) can read and submit them.
 */

export function escapeHtml (value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

function page (title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Mock IdP</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.75rem 0}input{display:block;width:100%;padding:.4rem;box-sizing:border-box}.error{color:#b00020}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`
}

export interface LoginPageOptions {
  action: string
  clientId: string
  username?: string
  error?: string
  /** Also asks for a one-time code (field `otp`): the MFA login. */
  oneTimeCode?: boolean
}

export function loginPage (options: LoginPageOptions): string {
  const error = options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>\n` : ''
  const oneTimeCode = options.oneTimeCode
    ? '<label>One-time code <input name="otp" inputmode="numeric" autocomplete="one-time-code" required></label>\n'
    : ''
  const notice = options.oneTimeCode ? '<p>This sign-in needs a one-time code from your authenticator.</p>\n' : ''
  return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong>${escapeHtml(options.clientId)}</strong></p>
${notice}${error}<form method="post" action="${escapeHtml(options.action)}" id="login-form">
<label>Username <input name="username" autocomplete="username" value="${escapeHtml(options.username ?? '')}" required autofocus></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
${oneTimeCode}<button type="submit">Sign in</button>
</form>`)
}

/** `form` is oidc-provider's own hidden form (action and xsrf token); the buttons submit it. */
export function logoutConfirmPage (form: string): string {
  return page('Sign out', `<h1>Sign out of the identity provider?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`)
}

export function loggedOutPage (): string {
  return page('Signed out', '<h1>Signed out</h1>\n<p>You have been signed out of the identity provider.</p>')
}

export function errorPage (fields: Record<string, string>): string {
  const rows = Object.entries(fields)
    .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
    .join('\n')
  return page('Error', `<h1>Something went wrong</h1>\n${rows}`)
}
