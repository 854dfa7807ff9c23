import { describe, expect, it } from 'vitest'
import { invalidationMessage, parseInvalidation } from '../../gateway/session/invalidation.js'

describe('invalidation messages', () => {
  it('read back as what they were written for', () => {
    expect(parseInvalidation(invalidationMessage.session('h1'))).toEqual({ kind: 'session', handle: 'h1' })
    expect(parseInvalidation(invalidationMessage.user('alice'))).toEqual({ kind: 'user', sub: 'alice' })
    expect(parseInvalidation(invalidationMessage.all())).toEqual({ kind: 'all' })
  })

  it('a message of no known kind is read as everyone: the safe side', () => {
    expect(parseInvalidation('x:whatever')).toEqual({ kind: 'all' })
    expect(parseInvalidation('')).toEqual({ kind: 'all' })
  })
})
