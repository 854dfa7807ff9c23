/** The page's `location` and `history`, as far as the browser client uses them. */
import type { PageWindow } from '../../src/browser.js'

export interface FakePage {
  window: PageWindow
  /** Every URL the client navigated to with `location.assign`. */
  navigations: string[]
  /** The current URL (changed by `replaceState`, or by the test to simulate a load). */
  href: string
}

export function fakePage (href: string): FakePage {
  const page: FakePage = {
    href,
    navigations: [],
    window: {
      location: {
        get href () { return page.href },
        assign (url: string) { page.navigations.push(url) },
      },
      history: {
        state: null,
        replaceState (_data: unknown, _unused: string, url?: string | null) {
          if (url != null) page.href = new URL(url, page.href).href
        },
      },
    },
  }
  return page
}
