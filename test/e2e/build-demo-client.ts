/** The e2e project's global setup: the demo pages load the client library from demo/vendor/, built here from client/src. */
import { buildDemoClient } from '../../scripts/demo-client.js'

export default async function setup (): Promise<void> {
  await buildDemoClient()
}
