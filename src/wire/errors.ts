/**
 * Errors of the wire layer. Each carries a stable `code` the layers above
 * can branch on (retry on ELINKDOWN/ETIMEDOUT, give up on EAUTH/EPROTO) and
 * a message a person can act on.
 */
export type WireErrorCode =
  | 'EAUTH' // handshake: the peer does not know our cookie (or we not its)
  | 'ECLUSTER' // handshake: the peer belongs to another cluster name
  | 'EPROTO' // malformed, truncated, oversized frame or wrong version
  | 'ETIMEDOUT' // RPC deadline or handshake deadline passed
  | 'ECANCELED' // the caller aborted the RPC
  | 'ELINKDOWN' // no working link to the peer (now)
  | 'EQUEUEFULL' // too many senders blocked on one peer's full queue
  | 'ENOMETHOD' // the peer has no handler for the RPC method
  | 'EREMOTE' // the remote handler threw; message is its message
  | 'ECOOKIE' // the cookie file is missing, empty or too widely readable
  | 'ECLOSED' // the wire was closed locally

export class WireError extends Error {
  readonly code: WireErrorCode
  constructor (code: WireErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.code = code
    this.name = 'WireError'
  }
}
