/**
 * Chromium as a native app's system browser (ASWebAuthenticationSession,
 * Custom Tabs): an `openAuthSession` for the client library that opens the
 * sign-in URL in a page, lets the "user" act on it, and resolves with the URL
 * the gateway sent the browser to once it is the app's redirect URI.
 *
 * Chromium cannot load a private-use scheme (`com.example.app:/…`): it aborts
 * the navigation and playwright reports no request for it. The DevTools
 * protocol still announces the request, with the redirect that led there, so
 * the URL is read from `Network.requestWillBeSent`. A claimed https redirect
 * URI would go out to the network: it is answered in the browser instead.
 */
import type { BrowserContext, Page } from 'playwright-core'
import type { OpenAuthSession } from '../../client/src/native.js'

const withoutQuery = (url: string) => url.split(/[?#]/, 1)[0]

/** What the person in front of the system browser does (fill in the IdP's form, say); nothing, for a sign-in without a page. */
export type SystemBrowserUser = (page: Page) => Promise<void>

export function chromiumAuthSession (context: BrowserContext, user: SystemBrowserUser): OpenAuthSession {
  return async (url, redirectUri) => {
    const page = await context.newPage()
    try {
      if (redirectUri.startsWith('https:')) {
        await page.route(url => withoutQuery(url.href) === redirectUri, route => route.fulfill({ contentType: 'text/html', body: '<p>Back to the app.</p>' }))
      }
      const devtools = await context.newCDPSession(page)
      await devtools.send('Network.enable')
      const redirected = new Promise<string>(resolve => {
        devtools.on('Network.requestWillBeSent', ({ request }) => {
          if (withoutQuery(request.url) === redirectUri) resolve(request.url)
        })
      })
      // The page's own navigation fails when it ends at a private-use scheme; the redirect is what counts.
      const browsing = page.goto(url).then(() => user(page), () => {})
      return await Promise.race([redirected, browsing.then(() => redirected)])
    } finally {
      await page.close()
    }
  }
}
