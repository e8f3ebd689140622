/**
 * The messages links carry after the handshake, and their msgpack encoding
 * (pure). Every message is an array whose first element is the protocol
 * version; a frame with another version, or one that does not decode to a
 * well-formed message, is an EPROTO error (the link is closed and counted).
 */
import { Packr } from 'msgpackr'
import { WireError } from './errors.js'

/** 2: fragment commands may carry row patches, which a host of version 1 would apply as whole rows. */
export const WIRE_VERSION = 2

export const enum Kind { Send = 0, Request = 1, Response = 2, Cancel = 3, Ping = 4, Pong = 5 }

export type Message =
  | { kind: Kind.Send, body: unknown }
  | { kind: Kind.Request, id: number, method: string, payload: unknown, deadlineMs: number }
  | { kind: Kind.Response, id: number, ok: boolean, payload: unknown }
  | { kind: Kind.Cancel, id: number }
  | { kind: Kind.Ping, stamp: number }
  | { kind: Kind.Pong, stamp: number }

// Records/structures off: each frame must decode on its own, without state
// shared between frames that a lost or hostile frame could corrupt.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export function encodeMessage (m: Message): Buffer {
  switch (m.kind) {
    case Kind.Send: return packr.pack([WIRE_VERSION, m.kind, m.body])
    case Kind.Request: return packr.pack([WIRE_VERSION, m.kind, m.id, m.method, m.payload, m.deadlineMs])
    case Kind.Response: return packr.pack([WIRE_VERSION, m.kind, m.id, m.ok, m.payload])
    case Kind.Cancel: return packr.pack([WIRE_VERSION, m.kind, m.id])
    case Kind.Ping: case Kind.Pong: return packr.pack([WIRE_VERSION, m.kind, m.stamp])
  }
}

function isId (x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

export function decodeMessage (frame: Buffer): Message {
  let a: unknown
  try {
    a = packr.unpack(frame)
  } catch (err) {
    throw new WireError('EPROTO', `undecodable frame: ${(err as Error).message}`)
  }
  if (!Array.isArray(a) || a.length < 2) throw new WireError('EPROTO', 'frame is not a message')
  if (a[0] !== WIRE_VERSION) throw new WireError('EPROTO', `message version ${String(a[0])}, this host speaks ${WIRE_VERSION}`)
  switch (a[1]) {
    case Kind.Send:
      if (a.length === 3) return { kind: Kind.Send, body: a[2] }
      break
    case Kind.Request:
      if (a.length === 6 && isId(a[2]) && typeof a[3] === 'string' && isId(a[5])) {
        return { kind: Kind.Request, id: a[2], method: a[3], payload: a[4], deadlineMs: a[5] }
      }
      break
    case Kind.Response:
      if (a.length === 5 && isId(a[2]) && typeof a[3] === 'boolean') {
        return { kind: Kind.Response, id: a[2], ok: a[3], payload: a[4] }
      }
      break
    case Kind.Cancel:
      if (a.length === 3 && isId(a[2])) return { kind: Kind.Cancel, id: a[2] }
      break
    case Kind.Ping: case Kind.Pong:
      if (a.length === 3 && typeof a[2] === 'number') return { kind: a[1], stamp: a[2] }
      break
  }
  throw new WireError('EPROTO', `malformed message of kind ${String(a[1])}`)
}
