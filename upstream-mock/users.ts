/**
 * The identity provider's user table. `sub` is the username. Roles and the
 * disabled flag are mutable so tests can change them and watch the next logins
 * and issued tokens follow.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

export interface MockUser {
  username: string
  password: string
  roles: string[]
  name: string
  email: string
}

export const DEFAULT_USERS: readonly MockUser[] = [
  { username: 'alice', password: 'alice-password', roles: ['user'], name: 'Alice Example', email: 'alice@example.com' },
  { username: 'bob', password: 'bob-password', roles: ['user', 'admin'], name: 'Bob Example', email: 'bob@example.com' },
]

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

export class UserDirectory {
  readonly #users = new Map<string, MockUser>()
  readonly #disabled = new Set<string>()

  constructor (users: readonly MockUser[] = DEFAULT_USERS) {
    for (const user of users) this.#users.set(user.username, { ...user, roles: [...user.roles] })
  }

  find (username: string): MockUser | undefined {
    return this.#users.get(username)
  }

  /** The user unless unknown or disabled: what logins and token issuance may act for. */
  findActive (username: string): MockUser | undefined {
    return this.#disabled.has(username) ? undefined : this.#users.get(username)
  }

  list (): MockUser[] {
    return [...this.#users.values()]
  }

  /** Returns the user only when the password matches; compared in constant time, even for unknown users. */
  authenticate (username: string, password: string): MockUser | undefined {
    const user = this.#users.get(username)
    const matches = timingSafeEqual(digest(password), digest(user?.password ?? '\0no-such-user'))
    return user && matches ? user : undefined
  }

  setRoles (username: string, roles: readonly string[]): void {
    this.#known(username).roles = [...roles]
  }

  setDisabled (username: string, disabled: boolean): void {
    this.#known(username)
    if (disabled) this.#disabled.add(username)
    else this.#disabled.delete(username)
  }

  isDisabled (username: string): boolean {
    return this.#disabled.has(username)
  }

  #known (username: string): MockUser {
    const user = this.#users.get(username)
    if (!user) throw new Error(`unknown user ${username}`)
    return user
  }
}
