/**
 * `npm run admin -- <command>` (or `node dist/gateway/admin/cli.js` in the image):
 * see admin-commands.ts for the commands. Exits 2 on a usage error, 1 on any other.
 */
import { runAdminCommand, UsageError } from './admin-commands.js'

runAdminCommand(process.argv.slice(2), line => process.stdout.write(`${line}\n`)).catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`)
  process.exit(error instanceof UsageError ? 2 : 1)
})
