import { it } from 'vitest'
import { startStack } from '../helpers/stack.js'
import { rawExchange } from '../helpers/raw-http.js'
it('probe', async () => {
  const stack = await startStack({ store: 'memory' })
  const host = new URL(stack.publicUrl).host
  for (const t of ['/api/orders/..', '/bff/user/..', '/nothing/..', '/api/orders/%zz', '*']) {
    const ex = await rawExchange(stack.publicUrl, `GET ${t} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    console.log(t, JSON.stringify(ex.text))
  }
  await stack.close()
})
