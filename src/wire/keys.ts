/**
 * Derives the cluster's keys from its cookie and name (pure, no I/O).
 * Each use gets its own key (domain separation), so a beacon MAC can never
 * be replayed as a handshake proof. The cluster hash is unkeyed on purpose:
 * it lets a host tell "another cluster" apart from "forged" when counting
 * drops, and it reveals only a hash of the name.
 */
import sodium from 'sodium-native'

export interface ClusterKeys {
  /** 16 bytes identifying the cluster name on the wire. */
  clusterHash: Buffer
  /** Key proving cookie knowledge in the handshake (crypto_auth). */
  authKey: Buffer
  /** Key signing discovery beacons (crypto_auth). */
  beaconKey: Buffer
}

function hash (bytes: number, input: Buffer, key?: Buffer): Buffer {
  const out = Buffer.alloc(bytes)
  if (key) sodium.crypto_generichash(out, input, key)
  else sodium.crypto_generichash(out, input)
  return out
}

export function deriveClusterKeys (cookie: Buffer, clusterName: string): ClusterKeys {
  const root = hash(32, Buffer.concat([Buffer.from('walkenfs cookie v1\0'), cookie]))
  const name = Buffer.from(clusterName, 'utf8')
  return {
    clusterHash: hash(16, Buffer.concat([Buffer.from('walkenfs cluster name v1\0'), name])),
    authKey: hash(32, Buffer.concat([Buffer.from('walkenfs wire auth v1\0'), name]), root),
    beaconKey: hash(32, Buffer.concat([Buffer.from('walkenfs beacon v1\0'), name]), root),
  }
}

/** Keyed hash used to mix handshake results into session keys. */
export function keyedHash (key: Buffer, ...parts: Buffer[]): Buffer {
  return hash(32, Buffer.concat(parts), key)
}

export function mac (key: Buffer, ...parts: Buffer[]): Buffer {
  const out = Buffer.alloc(sodium.crypto_auth_BYTES)
  sodium.crypto_auth(out, Buffer.concat(parts), key)
  return out
}

export function macValid (key: Buffer, tag: unknown, ...parts: Buffer[]): boolean {
  if (!Buffer.isBuffer(tag) && !(tag instanceof Uint8Array)) return false
  const t = Buffer.from(tag as Uint8Array)
  if (t.length !== sodium.crypto_auth_BYTES) return false
  return sodium.crypto_auth_verify(t, Buffer.concat(parts), key)
}

export function randomBytes (n: number): Buffer {
  const b = Buffer.alloc(n)
  sodium.randombytes_buf(b)
  return b
}
