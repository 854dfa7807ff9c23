/**
 * The IdP's own interaction pages (oidc-provider's dev interactions are off):
 * a username/password form for the login prompt (plus a one-time code when the
 * request asks for the MFA acr), and consent granted without a page, since
 * every client of the mock is first party. Disabled users cannot log in.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Interaction, InteractionResults, Provider } from 'oidc-provider'
import { ACR_MFA, requestedAcr } from './authentication-context.js'
import { readRequestBody } from './request-body.js'
import type { UserDirectory } from './users.js'
import { errorPage, loginPage } from './pages.js'

const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)$/

/** The interaction uid when the path is one of ours. */
export function matchInteractionPath (pathname: string): string | undefined {
  return INTERACTION_PATH.exec(pathname)?.[1]
}

function sendHtml (res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  })
  res.end(html)
}

function stringList (value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

/** Creates or extends the grant with exactly what the prompt reports missing. */
async function grantConsent (provider: Provider, interaction: Interaction): Promise<string> {
  const accountId = interaction.session?.accountId
  const clientId = interaction.params.client_id
  if (typeof accountId !== 'string' || typeof clientId !== 'string') {
    throw new Error('consent prompt without an authenticated account or a client')
  }
  const existing = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined
  const grant = existing ?? new provider.Grant({ accountId, clientId })
  const { details } = interaction.prompt

  const scopes = stringList(details.missingOIDCScope)
  if (scopes.length > 0) grant.addOIDCScope(scopes.join(' '))
  const claims = stringList(details.missingOIDCClaims)
  if (claims.length > 0) grant.addOIDCClaims(claims)
  const resourceScopes = details.missingResourceScopes
  if (resourceScopes && typeof resourceScopes === 'object') {
    for (const [indicator, scope] of Object.entries(resourceScopes)) {
      grant.addResourceScope(indicator, stringList(scope).join(' '))
    }
  }
  return grant.save()
}

function sameCode (given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

export interface InteractionSettings {
  /** Set when logins carry an acr: the one-time code of the MFA login. */
  mfaCode?: string
}

export function createInteractionHandler (provider: Provider, users: UserDirectory, settings: InteractionSettings = {}) {
  return async function handleInteraction (req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    let interaction: Interaction
    try {
      interaction = await provider.interactionDetails(req, res)
    } catch (error) {
      // Expired or unknown interaction, or its cookie is missing (e.g. another browser).
      sendHtml(res, 400, errorPage({ error: 'invalid_request', error_description: (error as Error).message }))
      return
    }
    if (interaction.uid !== uid) {
      sendHtml(res, 400, errorPage({ error: 'invalid_request', error_description: 'interaction mismatch' }))
      return
    }

    const action = `/interaction/${interaction.uid}`
    const clientId = String(interaction.params.client_id ?? '')

    switch (interaction.prompt.name) {
      case 'login': {
        const acr = settings.mfaCode === undefined ? undefined : requestedAcr(interaction.params.acr_values)
        const oneTimeCode = acr === ACR_MFA
        const page = (status: number, fields: { username?: string, error?: string }) =>
          sendHtml(res, status, loginPage({ action, clientId, oneTimeCode, ...fields }))
        if (req.method === 'GET') {
          // A step-up or max_age login is most often the same user again.
          const hint = interaction.params.login_hint ?? interaction.session?.accountId
          page(200, typeof hint === 'string' ? { username: hint } : {})
          return
        }
        if (req.method !== 'POST') break
        const form = new URLSearchParams((await readRequestBody(req, 16 * 1024)).toString('utf8'))
        const username = form.get('username') ?? ''
        const user = users.authenticate(username, form.get('password') ?? '')
        if (!user) {
          page(401, { username, error: 'Invalid username or password.' })
          return
        }
        if (users.isDisabled(user.username)) {
          page(403, { username, error: 'This account is disabled.' })
          return
        }
        if (oneTimeCode && !sameCode(form.get('otp') ?? '', settings.mfaCode ?? '')) {
          page(401, { username, error: 'Invalid one-time code.' })
          return
        }
        const login: InteractionResults['login'] = {
          accountId: user.username,
          ...(acr ? { acr, amr: oneTimeCode ? ['pwd', 'otp'] : ['pwd'] } : {}),
        }
        await provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false })
        return
      }
      case 'consent': {
        const grantId = await grantConsent(provider, interaction)
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
        return
      }
      default:
        sendHtml(res, 400, errorPage({ error: 'invalid_request', error_description: `unsupported prompt ${interaction.prompt.name}` }))
        return
    }
    res.writeHead(405, { allow: 'GET, POST' })
    res.end()
  }
}
