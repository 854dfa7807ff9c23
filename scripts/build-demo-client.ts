/** `npm run build:demo`: the demo pages' bundles of the client library, for serving demo/ without `npm run demo`. */
import { buildDemoClient } from './demo-client.js'

await buildDemoClient()
