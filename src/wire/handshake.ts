/**
 * The link handshake: both sides prove they know the cluster cookie without
 * revealing it, agree on fresh session keys, and learn each other's host id
 * and advertised addresses.
 *
 *   dialer → listener   hello  {v, cluster, id, nonce, ephemeral pk, enc, addrs}
 *   listener → dialer   {core: hello, mac: MAC_auth("L" ‖ transcript)}
 *                       | {ok: false, why: 'cluster'}  (another cluster name)
 *   dialer → listener   {mac: MAC_auth("D" ‖ transcript)}
 *                       | {ok: false, why: 'auth'}  (the listener's proof failed)
 *   listener → dialer   {ok: true} | {ok: false, why}  (why: 'auth', or e.g. itself)
 *
 * The refusals are said, not just done by closing, so that both sides log
 * and count the same cause.
 *
 * transcript = hash(dialer hello ‖ listener hello): both nonces and both
 * ephemeral keys are under each MAC, so a proof cannot be replayed into
 * another session and a man in the middle without the cookie cannot swap
 * the key-exchange keys. Session keys are the crypto_kx keys hashed with
 * the auth key and the transcript: forward secret (ephemeral keys) and
 * bound to the cookie. A side with a wrong cookie fails at the first MAC it
 * checks; every step has the handshake deadline, so nothing hangs.
 * Known limit: a listener answers anyone with a MAC, so a weak (guessable)
 * cookie could be attacked offline; cookies must be random (see cookie.ts).
 */
import type { Socket } from 'node:net'
import { Packr } from 'msgpackr'
import sodium from 'sodium-native'
import { WireError } from './errors.js'
import { FrameDecoder, frameHeader } from './framing.js'
import { keyedHash, mac, macValid, randomBytes } from './keys.js'
import { WIRE_VERSION } from './messages.js'

const MAX_HANDSHAKE_FRAME = 2048
const MAX_ADDRS = 16
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export interface HandshakeSettings {
  hostId: string
  clusterHash: Buffer
  authKey: Buffer
  encrypt: boolean
  /** Addresses ("host:port") this host can be reached at. */
  addrs: string[]
  timeoutMs: number
}

export interface HandshakeResult {
  peerId: string
  peerAddrs: string[]
  encrypt: boolean
  txKey: Buffer
  rxKey: Buffer
  /** Bytes received after the handshake's last frame (the first link frames). */
  leftover: Buffer
}

interface Hello { v: number, c: Buffer, id: string, n: Buffer, e: Buffer, enc: boolean, a: string[] }

/** Reads whole frames from a socket with a deadline; stops listening when done. */
class FrameReader {
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME)
  private frames: Buffer[] = []
  private failure: Error | null = null
  private wake: (() => void) | null = null
  private readonly onData = (chunk: Buffer): void => {
    try { this.frames.push(...this.decoder.push(chunk)) } catch (err) { this.fail(err as Error) }
    this.wake?.()
  }

  private readonly onEnd = (): void => { this.fail(new WireError('EPROTO', 'connection closed during handshake')) }
  private readonly onError = (err: Error): void => { this.fail(new WireError('EPROTO', `connection failed during handshake: ${err.message}`)) }

  constructor (private readonly socket: Socket, private readonly deadline: number) {
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('close', this.onEnd)
    socket.on('error', this.onError)
  }

  private fail (err: Error): void {
    this.failure ??= err
    this.wake?.()
  }

  async next (): Promise<Buffer> {
    for (;;) {
      const f = this.frames.shift()
      if (f) return f
      if (this.failure) throw this.failure
      const left = this.deadline - Date.now()
      if (left <= 0) throw new WireError('ETIMEDOUT', 'handshake did not finish in time')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => { clearTimeout(timer); this.wake = null; resolve() }
      })
    }
  }

  /** Detaches from the socket and returns unread bytes. */
  finish (): Buffer {
    this.socket.off('data', this.onData)
    this.socket.off('end', this.onEnd)
    this.socket.off('close', this.onEnd)
    this.socket.off('error', this.onError)
    const frames = this.frames.map((f) => Buffer.concat([frameHeader(f.length), f]))
    return Buffer.concat([...frames, this.decoder.rest()])
  }
}

function writeFrame (socket: Socket, obj: unknown): void {
  const body = packr.pack(obj)
  socket.write(Buffer.concat([frameHeader(body.length), body]))
}

function decodeObject (frame: Buffer): Record<string, unknown> {
  let o: unknown
  try { o = packr.unpack(frame) } catch { throw new WireError('EPROTO', 'undecodable handshake frame') }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new WireError('EPROTO', 'handshake frame is not a map')
  return o as Record<string, unknown>
}

function isBytes (x: unknown, n: number): x is Buffer {
  return (Buffer.isBuffer(x) || x instanceof Uint8Array) && x.length === n
}

function parseHello (frame: Buffer, s: HandshakeSettings): Hello {
  const o = decodeObject(frame)
  if (o.v !== WIRE_VERSION) throw new WireError('EPROTO', `peer speaks wire version ${String(o.v)}, this host ${WIRE_VERSION}: every host of a cluster must run the same walkenfs release (stop them all, upgrade, start them again)`)
  if (!isBytes(o.c, s.clusterHash.length)) throw new WireError('EPROTO', 'hello without cluster hash')
  if (!Buffer.from(o.c).equals(s.clusterHash)) throw new WireError('ECLUSTER', 'peer belongs to another cluster name')
  const a = o.a
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 128 ||
    !isBytes(o.n, 32) || !isBytes(o.e, sodium.crypto_kx_PUBLICKEYBYTES) || typeof o.enc !== 'boolean' ||
    !Array.isArray(a) || a.length > MAX_ADDRS || !a.every((x) => typeof x === 'string' && x.length <= 64)) {
    throw new WireError('EPROTO', 'malformed hello')
  }
  if (o.enc !== s.encrypt) {
    throw new WireError('EPROTO', `peer has encryption ${o.enc ? 'on' : 'off'}, this host ${s.encrypt ? 'on' : 'off'}; all hosts must agree`)
  }
  return { v: o.v, c: Buffer.from(o.c), id: o.id, n: Buffer.from(o.n), e: Buffer.from(o.e), enc: o.enc, a: a as string[] }
}

function keypair (): { pk: Buffer, sk: Buffer } {
  const pk = Buffer.alloc(sodium.crypto_kx_PUBLICKEYBYTES)
  const sk = Buffer.alloc(sodium.crypto_kx_SECRETKEYBYTES)
  sodium.crypto_kx_keypair(pk, sk)
  return { pk, sk }
}

function myHello (s: HandshakeSettings, pk: Buffer): Buffer {
  return packr.pack({ v: WIRE_VERSION, c: s.clusterHash, id: s.hostId, n: randomBytes(32), e: pk, enc: s.encrypt, a: s.addrs.slice(0, MAX_ADDRS) })
}

function sessionKeys (authKey: Buffer, transcript: Buffer, rx: Buffer, tx: Buffer): { rxKey: Buffer, txKey: Buffer } {
  return { rxKey: keyedHash(authKey, rx, transcript), txKey: keyedHash(authKey, tx, transcript) }
}

/** Runs the dialer's side on a connected socket. */
export async function dialerHandshake (socket: Socket, s: HandshakeSettings): Promise<HandshakeResult> {
  const reader = new FrameReader(socket, Date.now() + s.timeoutMs)
  try {
    const kp = keypair()
    const hello = myHello(s, kp.pk)
    socket.write(Buffer.concat([frameHeader(hello.length), hello]))
    const reply = decodeObject(await reader.next())
    if (reply.ok === false && reply.why === 'cluster') throw new WireError('ECLUSTER', 'peer belongs to another cluster name')
    if (!Buffer.isBuffer(reply.core) && !(reply.core instanceof Uint8Array)) throw new WireError('EPROTO', 'malformed hello reply')
    const core = Buffer.from(reply.core)
    const theirs = parseHello(core, s)
    if (theirs.id === s.hostId) throw new WireError('ELINKDOWN', 'connection to itself')
    const transcript = keyedHash(s.authKey, hello, core)
    if (!macValid(s.authKey, reply.mac, Buffer.from('L'), transcript)) {
      // Tell the listener, so that both sides log and count the refusal.
      writeFrame(socket, { ok: false, why: 'auth' })
      throw new WireError('EAUTH', `host ${JSON.stringify(theirs.id)} did not prove knowledge of our cookie (different cookie?)`)
    }
    writeFrame(socket, { mac: mac(s.authKey, Buffer.from('D'), transcript) })
    const verdict = decodeObject(await reader.next())
    if (verdict.ok !== true) {
      throw new WireError(verdict.why === 'auth' ? 'EAUTH' : 'ELINKDOWN',
        `host ${JSON.stringify(theirs.id)} refused the link: ${String(verdict.why)}`)
    }
    const rx = Buffer.alloc(sodium.crypto_kx_SESSIONKEYBYTES)
    const tx = Buffer.alloc(sodium.crypto_kx_SESSIONKEYBYTES)
    sodium.crypto_kx_client_session_keys(rx, tx, kp.pk, kp.sk, theirs.e)
    return { peerId: theirs.id, peerAddrs: theirs.a, encrypt: s.encrypt, ...sessionKeys(s.authKey, transcript, rx, tx), leftover: reader.finish() }
  } catch (err) {
    reader.finish()
    throw err
  }
}

/**
 * Runs the listener's side. `admit` may refuse an authenticated peer (e.g.
 * a connection to ourselves) by returning a reason.
 */
export async function listenerHandshake (socket: Socket, s: HandshakeSettings,
  admit: (peerId: string) => string | null): Promise<HandshakeResult> {
  const reader = new FrameReader(socket, Date.now() + s.timeoutMs)
  try {
    const helloD = await reader.next()
    let theirs: Hello
    try {
      theirs = parseHello(helloD, s)
    } catch (err) {
      // Saying "other cluster" reveals only what the dialer sent us.
      if (err instanceof WireError && err.code === 'ECLUSTER') writeFrame(socket, { ok: false, why: 'cluster' })
      throw err
    }
    const kp = keypair()
    const core = myHello(s, kp.pk)
    const transcript = keyedHash(s.authKey, helloD, core)
    writeFrame(socket, { core, mac: mac(s.authKey, Buffer.from('L'), transcript) })
    const proof = decodeObject(await reader.next())
    if (proof.ok === false && proof.why === 'auth') {
      throw new WireError('EAUTH', `host ${JSON.stringify(theirs.id)} refused our cookie proof (different cookie?)`)
    }
    if (!macValid(s.authKey, proof.mac, Buffer.from('D'), transcript)) {
      writeFrame(socket, { ok: false, why: 'auth' })
      throw new WireError('EAUTH', `host ${JSON.stringify(theirs.id)} did not prove knowledge of our cookie (different cookie?)`)
    }
    const refusal = admit(theirs.id)
    if (refusal !== null) {
      writeFrame(socket, { ok: false, why: refusal })
      throw new WireError('ELINKDOWN', `link from ${JSON.stringify(theirs.id)} refused: ${refusal}`)
    }
    writeFrame(socket, { ok: true })
    const rx = Buffer.alloc(sodium.crypto_kx_SESSIONKEYBYTES)
    const tx = Buffer.alloc(sodium.crypto_kx_SESSIONKEYBYTES)
    sodium.crypto_kx_server_session_keys(rx, tx, kp.pk, kp.sk, theirs.e)
    return { peerId: theirs.id, peerAddrs: theirs.a, encrypt: s.encrypt, ...sessionKeys(s.authKey, transcript, rx, tx), leftover: reader.finish() }
  } catch (err) {
    reader.finish()
    throw err
  }
}
