/** Errors of the local store: a POSIX-like code and a message that says what to do. */

export class StoreError extends Error {
  readonly code: string
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options)
    this.code = code
    this.name = 'StoreError'
  }
}
