/**
 * Multicast discovery: announces this host and learns the others by signed
 * beacons on a multicast group.
 *
 * Promises:
 * - Separate send and receive sockets (the receive socket binds the group
 *   port and joins the group; the send socket has its own port, TTL,
 *   interface), as in the design this descends from.
 * - Beaconing never stops (every `intervalMs`, ±20 % jitter), so islands
 *   left by a partition find each other again when it heals.
 * - Only authenticated, fresh, non-replayed beacons of our cluster reach
 *   the 'peer' event (and so cause connection attempts); everything else
 *   is dropped and counted, with bounded memory (see beacon.ts). A packet
 *   never throws out of the handler.
 */
import dgram from 'node:dgram'
import { EventEmitter } from 'node:events'
import { Counters } from '../wire/counters.js'
import type { ClusterKeys } from '../wire/keys.js'
import { checkBeacon, encodeBeacon, MAX_BEACON_BYTES, ReplayGuard, type Beacon } from './beacon.js'

export interface DiscoveryOptions {
  hostId: string
  /** Distinguishes this run of the host from earlier ones; must grow across restarts. */
  incarnation: number
  keys: ClusterKeys
  /** Addresses to advertise, read at each beacon (they may change). */
  addrs: () => string[]
  group?: string
  port?: number
  ttl?: number
  /**
   * IPv4 addresses of the interfaces to beacon and listen on (one send
   * socket each, so a multi-homed host is found over every network);
   * default: one socket on the kernel's choice.
   */
  ifaces?: string[]
  intervalMs?: number
  /** How far a beacon's timestamp may be from our clock (clock skew + delay). */
  windowMs?: number
  maxHosts?: number
  log?: (line: string) => void
}

export const DISCOVERY_COUNTERS = ['sent', 'sendErrors', 'received', 'accepted', 'self', 'malformed', 'otherCluster',
  'badSignature', 'stale', 'replayed'] as const

export const DISCOVERY_DEFAULTS = { group: '239.77.77.77', port: 7946, ttl: 1, intervalMs: 1000, windowMs: 30_000, maxHosts: 1024 }

export class Discovery extends EventEmitter {
  readonly counters = new Counters(DISCOVERY_COUNTERS)
  private readonly o: DiscoveryOptions & typeof DISCOVERY_DEFAULTS
  private readonly guard: ReplayGuard
  private recv: dgram.Socket | null = null
  private sends: dgram.Socket[] = []
  private timer: NodeJS.Timeout | null = null
  private lastTimestamp = 0

  constructor (opts: DiscoveryOptions) {
    super()
    this.o = { ...DISCOVERY_DEFAULTS, ...opts }
    if (!Number.isInteger(this.o.ttl) || this.o.ttl < 0 || this.o.ttl > 255) throw new Error(`multicast TTL ${this.o.ttl} is not in 0..255`)
    this.guard = new ReplayGuard(this.o.windowMs, this.o.maxHosts)
  }

  async start (): Promise<void> {
    const recv = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    this.recv = recv
    recv.on('message', (msg, rinfo) => this.receive(msg, `${rinfo.address}:${rinfo.port}`))
    recv.on('error', (err) => this.o.log?.(`walkenfs discovery: receive socket: ${err.message}`))
    await new Promise<void>((resolve, reject) => {
      recv.once('error', reject)
      recv.bind(this.o.port, () => { recv.off('error', reject); resolve() })
    })
    const ifaces = this.o.ifaces && this.o.ifaces.length > 0 ? this.o.ifaces : [undefined]
    for (const iface of ifaces) {
      recv.addMembership(this.o.group, iface)
      const send = dgram.createSocket({ type: 'udp4' })
      this.sends.push(send)
      send.on('error', (err) => { this.counters.inc('sendErrors'); this.o.log?.(`walkenfs discovery: send socket: ${err.message}`) })
      await new Promise<void>((resolve, reject) => {
        send.once('error', reject)
        send.bind(0, iface, () => { send.off('error', reject); resolve() })
      })
      send.setMulticastTTL(this.o.ttl)
      if (iface) send.setMulticastInterface(iface)
      send.setMulticastLoopback(true)
    }
    this.beacon()
  }

  async stop (): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const all = [...(this.recv ? [this.recv] : []), ...this.sends]
    this.recv = null
    this.sends = []
    for (const s of all) await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  private beacon (): void {
    if (!this.recv) return
    for (const send of this.sends) {
      // Strictly increasing, also across interfaces, so receivers can refuse
      // any copy (see ReplayGuard) and a beacon heard on two networks is
      // two fresh beacons, not a replay.
      this.lastTimestamp = Math.max(Date.now(), this.lastTimestamp + 1)
      const packet = encodeBeacon({ hostId: this.o.hostId, incarnation: this.o.incarnation, addrs: this.o.addrs(), timestamp: this.lastTimestamp }, this.o.keys)
      send.send(packet, this.o.port, this.o.group, (err) => {
        if (err) this.counters.inc('sendErrors')
        else this.counters.inc('sent')
      })
    }
    const delay = this.o.intervalMs * (0.8 + Math.random() * 0.4)
    this.timer = setTimeout(() => this.beacon(), delay)
  }

  /** Handles one received datagram (public for tests of the drop rules). */
  receive (msg: Buffer, _from: string): void {
    this.counters.inc('received')
    if (msg.length > MAX_BEACON_BYTES) { this.counters.inc('malformed'); return }
    const r = checkBeacon(msg, this.o.keys)
    if ('drop' in r) { this.counters.inc(r.drop); return }
    if (r.beacon.hostId === this.o.hostId) { this.counters.inc('self'); return }
    const verdict = this.guard.check(r.beacon, Date.now())
    if (verdict !== 'fresh') { this.counters.inc(verdict); return }
    this.counters.inc('accepted')
    this.emit('peer', r.beacon satisfies Beacon)
  }
}
