/**
 * Discovery beacons: encoding, authentication and replay protection (pure,
 * no I/O).
 *
 * A beacon is `"WKB1" ‖ msgpack[clusterHash, hostId, incarnation, addrs,
 * timestamp, nonce] ‖ MAC`, MAC = crypto_auth(beacon key, magic ‖ body),
 * the beacon key derived from the cookie (src/wire/keys.ts). Checks run
 * cheapest first and each failure has its own counter name: malformed
 * (size, magic, shape), otherCluster (hash of another cluster name),
 * badSignature (unsigned or forged), stale (timestamp outside the window),
 * replayed (not newer than the last beacon of that host incarnation).
 * The replay guard remembers at most `maxHosts` hosts (least recently
 * heard evicted), so no input costs unbounded memory.
 */
import { Packr } from 'msgpackr'
import type { ClusterKeys } from '../wire/keys.js'
import { mac, macValid, randomBytes } from '../wire/keys.js'

export const BEACON_MAGIC = Buffer.from('WKB1')
/** Fits one Ethernet frame, so a beacon is never fragmented. */
export const MAX_BEACON_BYTES = 1400
const MAC_BYTES = 32
const MAX_ADDRS = 16

export interface Beacon {
  hostId: string
  incarnation: number
  addrs: string[]
  timestamp: number
  nonce: Buffer
}

export type BeaconDrop = 'malformed' | 'otherCluster' | 'badSignature'
export type ReplayVerdict = 'fresh' | 'stale' | 'replayed'

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export function encodeBeacon (b: Omit<Beacon, 'nonce'> & { nonce?: Buffer }, keys: ClusterKeys): Buffer {
  const body = packr.pack([keys.clusterHash, b.hostId, b.incarnation, b.addrs.slice(0, MAX_ADDRS), b.timestamp, b.nonce ?? randomBytes(16)])
  const signed = Buffer.concat([BEACON_MAGIC, body])
  return Buffer.concat([signed, mac(keys.beaconKey, signed)])
}

export function checkBeacon (packet: Buffer, keys: ClusterKeys): { beacon: Beacon } | { drop: BeaconDrop } {
  if (packet.length > MAX_BEACON_BYTES || packet.length < BEACON_MAGIC.length + MAC_BYTES + 1 ||
    !packet.subarray(0, 4).equals(BEACON_MAGIC)) return { drop: 'malformed' }
  const signed = packet.subarray(0, packet.length - MAC_BYTES)
  let a: unknown
  try { a = packr.unpack(signed.subarray(4)) } catch { return { drop: 'malformed' } }
  if (!Array.isArray(a) || a.length !== 6) return { drop: 'malformed' }
  const [c, id, inc, addrs, ts, nonce] = a as unknown[]
  if (!(c instanceof Uint8Array) || typeof id !== 'string' || id.length === 0 || id.length > 128 ||
    typeof inc !== 'number' || !Number.isSafeInteger(inc) || typeof ts !== 'number' || !Number.isSafeInteger(ts) ||
    !(nonce instanceof Uint8Array) || nonce.length !== 16 || !Array.isArray(addrs) || addrs.length > MAX_ADDRS ||
    !addrs.every((x) => typeof x === 'string' && x.length <= 64)) return { drop: 'malformed' }
  if (!Buffer.from(c).equals(keys.clusterHash)) return { drop: 'otherCluster' }
  if (!macValid(keys.beaconKey, packet.subarray(packet.length - MAC_BYTES), signed)) return { drop: 'badSignature' }
  return { beacon: { hostId: id, incarnation: inc, addrs: addrs as string[], timestamp: ts, nonce: Buffer.from(nonce) } }
}

/**
 * Accepts a beacon only if it is recent (|now − timestamp| ≤ window) and
 * newer than everything accepted from that host: a higher incarnation
 * (the host restarted), or the same incarnation with a later timestamp.
 * Senders make their timestamps strictly increasing, so a copy of any
 * beacon, replayed at any time, is refused.
 * A host's entry is forgotten after a window without fresh beacons: a
 * host restarted with its clock stepped back (lower incarnation) is heard
 * again after one window, and what a replay could then bring back is at
 * most a beacon of the last window, which tells only the truth about it.
 */
export class ReplayGuard {
  private readonly last = new Map<string, { incarnation: number, timestamp: number, acceptedAt: number }>()
  constructor (private readonly windowMs: number, private readonly maxHosts: number) {}

  check (b: Beacon, now: number): ReplayVerdict {
    if (Math.abs(now - b.timestamp) > this.windowMs) return 'stale'
    let prev = this.last.get(b.hostId)
    if (prev && now - prev.acceptedAt > this.windowMs) prev = undefined
    if (prev && (b.incarnation < prev.incarnation || (b.incarnation === prev.incarnation && b.timestamp <= prev.timestamp))) {
      return 'replayed'
    }
    this.last.delete(b.hostId)
    if (this.last.size >= this.maxHosts) this.last.delete(this.last.keys().next().value as string)
    this.last.set(b.hostId, { incarnation: b.incarnation, timestamp: b.timestamp, acceptedAt: now })
    return 'fresh'
  }

  get size (): number { return this.last.size }
}
