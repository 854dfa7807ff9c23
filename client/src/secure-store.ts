/**
 * Where the native client keeps its session credential: the platform's
 * secure storage (Keychain / Keystore-backed, e.g. expo-secure-store), or
 * memory in tests and for apps that sign in at every start.
 */
export interface SecureStore {
  get (key: string): Promise<string | null | undefined>
  set (key: string, value: string): Promise<void>
  delete (key: string): Promise<void>
}

export function createMemorySecureStore (): SecureStore {
  const values = new Map<string, string>()
  return {
    async get (key) { return values.get(key) ?? null },
    async set (key, value) { values.set(key, value) },
    async delete (key) { values.delete(key) },
  }
}
