/**
 * Certificates for Redis over TLS, made with openssl in a private temp dir: a
 * CA, a certificate it signed for 127.0.0.1 and localhost (clients check the
 * address they dialled against the certificate's subject alternative names, so
 * loopback needs an IP entry), and a CA that signed nothing here, for the
 * "wrong CA" cases. Redis uses the one certificate as server and, between
 * replicas, sentinels and cluster nodes, as client.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { removeOnExit } from './process-cleanup.js'

const run = promisify(execFile)
const OPENSSL = 'openssl'
const DAYS = '2'
// EC keys: made in milliseconds, where RSA takes a noticeable share of a test's time.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export interface TlsFiles {
  readonly dir: string
  /** The CA certificate that signed `cert` (the value for REDIS_TLS_CA). */
  readonly ca: string
  /** The server (and peer client) certificate for 127.0.0.1 and localhost. */
  readonly cert: string
  readonly key: string
  /** A CA certificate that signed nothing here: a REDIS_TLS_CA that must not be trusted. */
  readonly otherCa: string
  /** Removes the directory. */
  close (): Promise<void>
}

/** Makes the files; register `files.close()` as cleanup where you call this. */
export async function createTlsFiles (): Promise<TlsFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-tls-'))
  removeOnExit.add(dir)
  const file = (name: string) => join(dir, name)
  const openssl = async (...args: string[]) => {
    try {
      await run(OPENSSL, args, { cwd: dir })
    } catch (error) {
      throw new Error(`openssl ${args[0]} failed: ${(error as { stderr?: string }).stderr ?? ''}`, { cause: error })
    }
  }
  await writeFile(file('server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth,clientAuth',
    '',
  ].join('\n'))
  await openssl('req', '-x509', ...NEW_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', DAYS, '-subj', '/CN=bff test CA')
  await openssl('req', '-x509', ...NEW_KEY, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', DAYS, '-subj', '/CN=bff unrelated CA')
  await openssl('req', '-new', ...NEW_KEY, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', DAYS, '-extfile', 'server.ext')
  return {
    dir,
    ca: file('ca.crt'),
    cert: file('server.crt'),
    key: file('server.key'),
    otherCa: file('other-ca.crt'),
    async close () {
      await rm(dir, { recursive: true, force: true })
      removeOnExit.forget(dir)
    },
  }
}

/**
 * redis-server settings serving TLS on `tlsPort` with these files, as
 * [directive, value] pairs (command-line arguments or configuration lines);
 * clients need no certificate of their own.
 */
export function tlsSettings (files: TlsFiles, tlsPort: number): Array<[string, string]> {
  return [
    ['tls-port', String(tlsPort)],
    ['tls-cert-file', files.cert],
    ['tls-key-file', files.key],
    ['tls-ca-cert-file', files.ca],
    ['tls-auth-clients', 'no'],
  ]
}
