/**
 * In-memory storage for oidc-provider, in place of its built-in LRU adapter,
 * so the test control API can enumerate grants and sessions and delete them as
 * an administrator of a real IdP would. State lives in the store object, not
 * the HTTP listener, so it survives a simulated outage (stop/start).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider'

interface Entry {
  payload: AdapterPayload
  /** Epoch milliseconds; undefined = no expiry. */
  expiresAt: number | undefined
}

/** Models whose records belong to a grant and die with it. */
const GRANT_MEMBERS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
])

export class MemoryAdapterStore {
  readonly #models = new Map<string, Map<string, Entry>>()
  /** grantId → `${model}:${id}` of every record issued under it. */
  readonly #grantMembers = new Map<string, Set<string>>()
  readonly #sessionIdByUid = new Map<string, string>()
  readonly #idByUserCode = new Map<string, string>()

  /** The factory oidc-provider calls once per model name. */
  readonly adapterFor = (model: string): Adapter => new MemoryAdapter(model, this)

  #table (model: string): Map<string, Entry> {
    let table = this.#models.get(model)
    if (!table) {
      table = new Map()
      this.#models.set(model, table)
    }
    return table
  }

  get (model: string, id: string): AdapterPayload | undefined {
    const entry = this.#table(model).get(id)
    if (!entry) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.delete(model, id)
      return undefined
    }
    // A copy: oidc-provider mutates the objects it loads, and must not reach into the store by accident.
    return structuredClone(entry.payload)
  }

  set (model: string, id: string, payload: AdapterPayload, expiresIn?: number): void {
    this.delete(model, id)
    const stored = structuredClone(payload)
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined
    this.#table(model).set(id, { payload: stored, expiresAt })
    if (GRANT_MEMBERS.has(model) && typeof stored.grantId === 'string') {
      let members = this.#grantMembers.get(stored.grantId)
      if (!members) {
        members = new Set()
        this.#grantMembers.set(stored.grantId, members)
      }
      members.add(`${model}:${id}`)
    }
    if (model === 'Session' && typeof stored.uid === 'string') this.#sessionIdByUid.set(stored.uid, id)
    if (typeof stored.userCode === 'string') this.#idByUserCode.set(stored.userCode, id)
  }

  delete (model: string, id: string): void {
    const table = this.#table(model)
    const entry = table.get(id)
    if (!entry) return
    table.delete(id)
    const { grantId, uid, userCode } = entry.payload
    if (typeof grantId === 'string') this.#grantMembers.get(grantId)?.delete(`${model}:${id}`)
    if (model === 'Session' && typeof uid === 'string' && this.#sessionIdByUid.get(uid) === id) this.#sessionIdByUid.delete(uid)
    if (typeof userCode === 'string' && this.#idByUserCode.get(userCode) === id) this.#idByUserCode.delete(userCode)
  }

  markConsumed (model: string, id: string): void {
    const entry = this.#table(model).get(id)
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000)
  }

  sessionIdForUid (uid: string): string | undefined {
    return this.#sessionIdByUid.get(uid)
  }

  idForUserCode (userCode: string): string | undefined {
    return this.#idByUserCode.get(userCode)
  }

  /** Deletes every token and code issued under a grant, leaving the Grant record. */
  deleteGrantMembers (grantId: string): void {
    for (const member of [...this.#grantMembers.get(grantId) ?? []]) {
      const separator = member.indexOf(':')
      this.delete(member.slice(0, separator), member.slice(separator + 1))
    }
    this.#grantMembers.delete(grantId)
  }

  /** Deletes the grant itself and everything issued under it. */
  revokeGrant (grantId: string): void {
    this.deleteGrantMembers(grantId)
    this.delete('Grant', grantId)
  }

  /** Live records of one model, as copies. */
  list (model: string): Array<{ id: string, payload: AdapterPayload }> {
    const records: Array<{ id: string, payload: AdapterPayload }> = []
    for (const id of [...this.#table(model).keys()]) {
      const payload = this.get(model, id)
      if (payload) records.push({ id, payload })
    }
    return records
  }
}

class MemoryAdapter implements Adapter {
  readonly #model: string
  readonly #store: MemoryAdapterStore

  constructor (model: string, store: MemoryAdapterStore) {
    this.#model = model
    this.#store = store
  }

  async upsert (id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    this.#store.set(this.#model, id, payload, expiresIn)
  }

  async find (id: string): Promise<AdapterPayload | undefined> {
    return this.#store.get(this.#model, id)
  }

  async findByUid (uid: string): Promise<AdapterPayload | undefined> {
    const id = this.#store.sessionIdForUid(uid)
    return id === undefined ? undefined : this.#store.get(this.#model, id)
  }

  async findByUserCode (userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.#store.idForUserCode(userCode)
    return id === undefined ? undefined : this.#store.get(this.#model, id)
  }

  async consume (id: string): Promise<void> {
    this.#store.markConsumed(this.#model, id)
  }

  async destroy (id: string): Promise<void> {
    this.#store.delete(this.#model, id)
  }

  async revokeByGrantId (grantId: string): Promise<void> {
    // oidc-provider destroys the Grant record itself; this removes what was issued under it.
    this.#store.deleteGrantMembers(grantId)
  }
}
