import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { CONFIG_VARIABLES, loadConfig } from '../../gateway/config.js'

const ROOT = new URL('../../', import.meta.url)

interface ComposeService {
  build?: { target?: string }
  environment?: Record<string, string>
}

async function gatewayServices (): Promise<Array<[string, ComposeService]>> {
  const compose = parse(await readFile(new URL('docker-compose.yml', ROOT), 'utf8')) as { services: Record<string, ComposeService> }
  return Object.entries(compose.services).filter(([, service]) => service.build?.target === 'gateway')
}

describe('docker-compose.yml', () => {
  it('parses and runs at least one gateway built from the Dockerfile', async () => {
    expect((await gatewayServices()).length).toBeGreaterThanOrEqual(1)
  })

  it('sets only variables the config schema knows, and a configuration that loads', async () => {
    for (const [name, service] of await gatewayServices()) {
      const env = service.environment ?? {}
      const unknown = Object.keys(env).filter(key => !CONFIG_VARIABLES.includes(key))
      expect(unknown, `service ${name}`).toEqual([])
      // The image's /app/deploy/routes.json is this repository's deploy/routes.json.
      const routesFile = fileURLToPath(new URL(env.ROUTES_FILE!.replace(/^\/app\//, ''), ROOT))
      await expect(loadConfig({ ...env, ROUTES_FILE: routesFile })).resolves.toBeDefined()
    }
  })
})
