/**
 * The wire: this host's authenticated links to its peers, and the API the
 * layers above use.
 *
 *   const wire = new Wire({ hostId, cookie, clusterName, port, advertise })
 *   await wire.start()
 *   wire.handle('raft.vote', async (payload, { peerId, signal }) => answer)
 *   wire.on('message', (peerId, body) => …)      // one-way messages
 *   wire.on('peer-up', (peerId) => …); wire.on('peer-down', (peerId, why) => …)
 *   await wire.send(peerId, body)                  // one-way, at most once
 *   await wire.call(peerId, 'raft.vote', payload, { deadlineMs: 500, signal })
 *   wire.addPeer(peerId, ['10.0.0.2:7400', '10.1.0.2:7400'])  // from discovery
 *   wire.addSeed('10.0.0.3:7400')                  // static peers
 *
 * Promises:
 * - Only hosts that prove knowledge of the cookie (see handshake.ts) get a
 *   link; a refusal is logged with the remote address and counted.
 * - At most one link per peer: when both sides dial at once, the link
 *   dialed by the smaller host id survives (both sides decide the same).
 * - `send` is at most once and fails fast with ELINKDOWN when no link is up
 *   (Raft retries by itself). `call` waits for a link up to its deadline,
 *   so a failover between addresses is invisible to it unless the deadline
 *   passes; a call in flight on a link that dies fails with ELINKDOWN.
 * - Several addresses per peer: a link that dies (error or silence) is
 *   redialed at once, starting with the next address, then with jittered
 *   exponential backoff; dialing never stops while the peer is known, so
 *   hosts find each other again after a partition.
 * - 'link-up'/'link-down' report every link; 'peer-up'/'peer-down' only
 *   changes of "this peer has a link" (the failure detector in
 *   src/cluster/membership.ts builds the view the layers above use).
 */
import { EventEmitter } from 'node:events'
import net, { type Socket } from 'node:net'
import { backoffDelay, type BackoffSettings } from './backoff.js'
import { Counters } from './counters.js'
import { WireError } from './errors.js'
import { dialerHandshake, listenerHandshake, type HandshakeResult, type HandshakeSettings } from './handshake.js'
import { deriveClusterKeys, type ClusterKeys } from './keys.js'
import { Link, type LinkSettings, type RequestHandler } from './link.js'
import { tcpTuneProblem } from './tcp-tune.js'

export interface WireOptions {
  hostId: string
  cookie: Buffer
  clusterName: string
  /** TCP port to listen on (0: any; see `port` after start). */
  port: number
  /** Listen address; default all IPv4 addresses. */
  listenHost?: string
  /** "host:port" addresses peers may dial; default: listen address. */
  advertise?: string[]
  encrypt?: boolean
  maxFrameBytes?: number
  heartbeatMs?: number
  linkTimeoutMs?: number
  handshakeTimeoutMs?: number
  connectTimeoutMs?: number
  backoff?: BackoffSettings
  maxQueued?: number
  maxBlockedSenders?: number
  maxInflight?: number
  /** Most peers (and seeds) remembered; more are refused and counted. */
  maxPeers?: number
  /** Most connections in handshake at once; more are closed at once. */
  maxHandshakes?: number
  log?: (line: string) => void
}

export const WIRE_COUNTERS = ['authFailed', 'otherCluster', 'protoErrors', 'handshakeErrors', 'handshakeOverload',
  'linksUp', 'linksDown', 'dialFailures', 'duplicateLinks', 'peersRefused'] as const
export type WireCounter = typeof WIRE_COUNTERS[number]

interface Peer {
  id: string
  addrs: string[]
  /** Index into addrs to try first on the next dial. */
  next: number
  link: Link | null
  dialing: boolean
  attempt: number
  timer: NodeJS.Timeout | null
}

interface Seed { addr: string, dialing: boolean, attempt: number, timer: NodeJS.Timeout | null, self: boolean }

export function parseAddr (addr: string): { host: string, port: number } {
  const i = addr.lastIndexOf(':')
  const port = Number(addr.slice(i + 1))
  const host = addr.slice(0, i)
  if (i <= 0 || !/^([\w.-]+|\[[0-9a-fA-F:.]+\])$/.test(host) || !/^\d+$/.test(addr.slice(i + 1)) || port <= 0 || port > 65535) {
    throw new WireError('EPROTO', `bad address ${JSON.stringify(addr)}; expected host:port`)
  }
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port }
}

export class Wire extends EventEmitter {
  readonly hostId: string
  readonly counters = new Counters(WIRE_COUNTERS)
  readonly keys: ClusterKeys
  private readonly o: Required<Omit<WireOptions, 'advertise' | 'listenHost' | 'cookie'>> & { listenHost: string }
  private readonly linkSettings: LinkSettings
  private readonly handlers = new Map<string, RequestHandler>()
  private readonly peers = new Map<string, Peer>()
  private readonly seeds = new Map<string, Seed>()
  private readonly sockets = new Set<Socket>()
  private server: net.Server | null = null
  private handshakes = 0
  /** Calls waiting for a link to come up (bounded by maxBlockedSenders). */
  private waitingCalls = 0
  private closed = false
  private advertised: string[]

  constructor (opts: WireOptions) {
    super()
    // One 'peer-up' listener per call waiting for a link; bounded by maxBlockedSenders.
    this.setMaxListeners(0)
    this.hostId = opts.hostId
    this.keys = deriveClusterKeys(opts.cookie, opts.clusterName)
    this.o = {
      hostId: opts.hostId,
      clusterName: opts.clusterName,
      port: opts.port,
      listenHost: opts.listenHost ?? '0.0.0.0',
      encrypt: opts.encrypt ?? true,
      maxFrameBytes: opts.maxFrameBytes ?? 16 * 1024 * 1024,
      heartbeatMs: opts.heartbeatMs ?? 1000,
      linkTimeoutMs: opts.linkTimeoutMs ?? 3000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
      backoff: opts.backoff ?? { baseMs: 100, maxMs: 5000 },
      maxQueued: opts.maxQueued ?? 256,
      maxBlockedSenders: opts.maxBlockedSenders ?? 1024,
      maxInflight: opts.maxInflight ?? 256,
      maxPeers: opts.maxPeers ?? 1024,
      maxHandshakes: opts.maxHandshakes ?? 64,
      log: opts.log ?? ((line) => { console.error(line) }),
    }
    if (this.o.linkTimeoutMs <= this.o.heartbeatMs) {
      throw new WireError('EPROTO', `linkTimeoutMs (${this.o.linkTimeoutMs}) must exceed heartbeatMs (${this.o.heartbeatMs})`)
    }
    this.linkSettings = {
      maxFrameBytes: this.o.maxFrameBytes,
      heartbeatMs: this.o.heartbeatMs,
      linkTimeoutMs: this.o.linkTimeoutMs,
      maxQueued: this.o.maxQueued,
      maxBlockedSenders: this.o.maxBlockedSenders,
      maxInflight: this.o.maxInflight,
    }
    this.advertised = opts.advertise ?? []
  }

  /** Addresses this host advertises ("host:port"). */
  get addresses (): string[] { return this.advertised }

  /** Replaces the advertised addresses (e.g. once the listen port is known). */
  setAddresses (addrs: string[]): void {
    for (const a of addrs) parseAddr(a)
    this.advertised = addrs.slice(0, 16)
  }

  get port (): number {
    const a = this.server?.address()
    return typeof a === 'object' && a !== null ? a.port : this.o.port
  }

  async start (): Promise<void> {
    const tcp = tcpTuneProblem()
    if (tcp) this.o.log(`walkenfs wire: ${tcp}`)
    const server = net.createServer((s) => this.accept(s))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new WireError('ECLOSED', `cannot listen on ${this.o.listenHost}:${this.o.port}: ${err.message}`)))
      server.listen(this.o.port, this.o.listenHost, () => resolve())
    })
    if (this.advertised.length === 0) this.advertised = [`${this.o.listenHost === '0.0.0.0' ? '127.0.0.1' : this.o.listenHost}:${this.port}`]
  }

  async close (): Promise<void> {
    this.closed = true
    for (const p of this.peers.values()) { if (p.timer) clearTimeout(p.timer); p.link?.close('wire closed') }
    for (const s of this.seeds.values()) if (s.timer) clearTimeout(s.timer)
    for (const s of this.sockets) s.destroy()
    const server = this.server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  handle (method: string, handler: RequestHandler): void { this.handlers.set(method, handler) }

  /** Peers with a link now. */
  linkedPeers (): string[] { return [...this.peers.values()].filter((p) => p.link).map((p) => p.id) }

  /** Known peers with their addresses and link state. */
  peerTable (): Array<{ id: string, addrs: string[], linkedVia: string | null, lastHeardMs: number | null, queued: number, tcp: number[] | null }> {
    const now = Date.now()
    return [...this.peers.values()].map((p) => ({ id: p.id, addrs: p.addrs, linkedVia: p.link?.addr ?? null,
      lastHeardMs: p.link ? now - p.link.lastHeard : null, queued: p.link?.queued ?? 0, tcp: p.link?.tcpTimeouts() ?? null }))
  }

  /** Time (Date.now() ms) we last heard anything from the peer, or null. */
  lastHeard (peerId: string): number | null { return this.peers.get(peerId)?.link?.lastHeard ?? null }

  /** Tells the wire a peer exists and where (discovery); starts dialing it. */
  addPeer (peerId: string, addrs: string[]): void {
    if (this.closed || peerId === this.hostId) return
    const p = this.peer(peerId)
    if (!p) return
    const fresh = addrs.filter((a) => { try { parseAddr(a); return true } catch { return false } }).slice(0, 16)
    if (fresh.length > 0 && fresh.join(',') !== p.addrs.join(',')) { p.addrs = fresh; p.next = 0 }
    this.maintain(p)
  }

  /** Forgets a peer (e.g. retired): closes its link and stops dialing. */
  removePeer (peerId: string): void {
    const p = this.peers.get(peerId)
    if (!p) return
    this.peers.delete(peerId)
    if (p.timer) clearTimeout(p.timer)
    p.link?.close('peer removed')
  }

  /** A static peer address (host:port); dialed until a link through it exists. */
  addSeed (addr: string): void {
    parseAddr(addr)
    if (this.closed || this.seeds.has(addr)) return
    if (this.seeds.size >= this.o.maxPeers) { this.counters.inc('peersRefused'); return }
    const s: Seed = { addr, dialing: false, attempt: 0, timer: null, self: this.advertised.includes(addr) }
    this.seeds.set(addr, s)
    this.maintainSeed(s)
  }

  /** Whether a link to the peer is up now. */
  hasLink (peerId: string): boolean {
    return this.peers.get(peerId)?.link != null
  }

  async send (peerId: string, body: unknown): Promise<void> {
    const link = this.peers.get(peerId)?.link
    if (!link) throw new WireError('ELINKDOWN', `no link to ${peerId}`)
    await link.send(body)
  }

  async call (peerId: string, method: string, payload: unknown, opts: { deadlineMs: number, signal?: AbortSignal }): Promise<unknown> {
    const until = Date.now() + opts.deadlineMs
    const link = this.peers.get(peerId)?.link ?? await this.waitForLink(peerId, opts.deadlineMs, opts.signal)
    return await link.call(method, payload, Math.max(1, until - Date.now()), opts.signal)
  }

  private waitForLink (peerId: string, ms: number, signal?: AbortSignal): Promise<Link> {
    if (this.closed) return Promise.reject(new WireError('ECLOSED', 'wire is closed'))
    if (signal?.aborted) return Promise.reject(new WireError('ECANCELED', `call to ${peerId} was canceled`))
    if (this.waitingCalls >= this.o.maxBlockedSenders) {
      return Promise.reject(new WireError('EQUEUEFULL', `${this.waitingCalls} calls already wait for links`))
    }
    this.waitingCalls++
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.waitingCalls--
        clearTimeout(timer); this.off('peer-up', onUp); signal?.removeEventListener('abort', onAbort)
      }
      const onUp = (id: string): void => {
        const link = this.peers.get(id)?.link
        if (id === peerId && link) { done(); resolve(link) }
      }
      const onAbort = (): void => { done(); reject(new WireError('ECANCELED', `call to ${peerId} was canceled`)) }
      const timer = setTimeout(() => { done(); reject(new WireError('ELINKDOWN', `no link to ${peerId} within ${ms} ms`)) }, ms)
      this.on('peer-up', onUp)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private peer (id: string): Peer | null {
    let p = this.peers.get(id)
    if (!p) {
      if (this.peers.size >= this.o.maxPeers) { this.counters.inc('peersRefused'); return null }
      p = { id, addrs: [], next: 0, link: null, dialing: false, attempt: 0, timer: null }
      this.peers.set(id, p)
    }
    return p
  }

  private handshakeSettings (): HandshakeSettings {
    return { hostId: this.hostId, clusterHash: this.keys.clusterHash, authKey: this.keys.authKey, encrypt: this.o.encrypt,
      addrs: this.advertised, timeoutMs: this.o.handshakeTimeoutMs }
  }

  private refused (err: unknown, where: string): void {
    const e = err instanceof WireError ? err : new WireError('EPROTO', (err as Error).message)
    if (e.code === 'EAUTH') this.counters.inc('authFailed')
    else if (e.code === 'ECLUSTER') this.counters.inc('otherCluster')
    else this.counters.inc('handshakeErrors')
    if (e.code === 'EAUTH' || e.code === 'ECLUSTER') this.o.log(`walkenfs wire: refused link ${where}: ${e.message}`)
  }

  private accept (socket: Socket): void {
    if (this.closed) { socket.destroy(); return }
    if (this.handshakes >= this.o.maxHandshakes) { this.counters.inc('handshakeOverload'); socket.destroy(); return }
    this.handshakes++
    this.sockets.add(socket)
    socket.on('error', () => {})
    const from = `${socket.remoteAddress}:${socket.remotePort}`
    listenerHandshake(socket, this.handshakeSettings(), (id) => id === this.hostId ? 'connection to itself' : null).then(
      (hs) => {
        // Name the link by the peer's advertised address on the path it
        // used, so that failover after this path dies tries another one first.
        const via = hs.peerAddrs.find((a) => parseAddr(a).host === socket.remoteAddress?.replace(/^::ffff:/, ''))
        this.adopt(socket, hs, hs.peerId, via ?? `${socket.remoteAddress}:${socket.remotePort}`)
      },
      (err) => { socket.destroy(); this.refused(err, `from ${from}`) },
    ).finally(() => { this.handshakes--; this.sockets.delete(socket) })
  }

  private dial (addr: string): Promise<{ socket: Socket, hs: HandshakeResult }> {
    const { host, port } = parseAddr(addr)
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port })
      this.sockets.add(socket)
      const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${this.o.connectTimeoutMs} ms`)), this.o.connectTimeoutMs)
      const fail = (err: Error): void => { clearTimeout(timer); this.sockets.delete(socket); socket.destroy(); reject(err) }
      socket.once('error', fail)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', fail)
        socket.on('error', () => {})
        dialerHandshake(socket, this.handshakeSettings()).then(
          (hs) => { this.sockets.delete(socket); resolve({ socket, hs }) },
          (err: Error) => { this.sockets.delete(socket); socket.destroy(); this.refused(err, `to ${addr}`); reject(err) })
      })
    })
  }

  /** Installs an authenticated link, resolving duplicates. */
  private adopt (socket: Socket, hs: HandshakeResult, dialer: string, addr: string): Link | null {
    if (this.closed) { socket.destroy(); return null }
    const p = this.peer(hs.peerId)
    if (!p) { socket.destroy(); return null }
    if (hs.peerAddrs.length > 0 && p.addrs.length === 0) p.addrs = hs.peerAddrs.slice(0, 16)
    else for (const a of hs.peerAddrs) if (!p.addrs.includes(a) && p.addrs.length < 16) p.addrs.push(a)
    const link = new Link(socket, hs, dialer, addr, this.linkSettings, (m) => this.handlers.get(m))
    const old = p.link
    const hadLink = old !== null && !old.closed
    if (old && !old.closed) {
      const winner = this.hostId < hs.peerId ? this.hostId : hs.peerId
      const keepOld = old.dialer === link.dialer || old.dialer === winner
      this.counters.inc('duplicateLinks')
      if (keepOld) { link.close('duplicate link'); return null }
      p.link = null
      old.close('replaced by a link dialed by the smaller host id')
    }
    p.link = link
    p.attempt = 0
    if (p.timer) { clearTimeout(p.timer); p.timer = null }
    this.counters.inc('linksUp')
    link.on('message', (body: unknown) => this.emit('message', p.id, body))
    link.on('protoError', () => this.counters.inc('protoErrors'))
    link.on('close', (reason: string) => {
      this.counters.inc('linksDown')
      this.emit('link-down', p.id, link.addr, reason)
      if (p.link !== link) return
      p.link = null
      const i = p.addrs.indexOf(link.addr)
      if (i >= 0) p.next = (i + 1) % p.addrs.length
      this.emit('peer-down', p.id, reason)
      if (this.peers.get(p.id) === p) this.maintain(p)
    })
    this.emit('link-up', p.id, addr)
    if (!hadLink) this.emit('peer-up', p.id)
    return link
  }

  /** Keeps dialing a peer without a link, address after address, with backoff. */
  private maintain (p: Peer): void {
    if (this.closed || p.link || p.dialing || p.timer || p.addrs.length === 0) return
    p.dialing = true
    void (async () => {
      const n = p.addrs.length
      for (let k = 0; k < n && !this.closed && !p.link && this.peers.get(p.id) === p; k++) {
        const addr = p.addrs[(p.next + k) % n]!
        try {
          const { socket, hs } = await this.dial(addr)
          if (hs.peerId !== p.id) {
            // The address now belongs to another host: keep that link, go on with this peer.
            this.adopt(socket, hs, this.hostId, addr)
            continue
          }
          if (this.adopt(socket, hs, this.hostId, addr)) { p.next = (p.next + k) % n; break }
        } catch {
          this.counters.inc('dialFailures')
        }
      }
      p.dialing = false
      if (!p.link && !this.closed && this.peers.get(p.id) === p) {
        const delay = backoffDelay(p.attempt++, this.o.backoff)
        p.timer = setTimeout(() => { p.timer = null; this.maintain(p) }, delay)
      }
    })()
  }

  private seedCovered (s: Seed): boolean {
    for (const p of this.peers.values()) if (p.link && p.addrs.includes(s.addr)) return true
    return false
  }

  private maintainSeed (s: Seed): void {
    if (this.closed || s.self || s.dialing || s.timer) return
    s.dialing = true
    void (async () => {
      if (!this.seedCovered(s)) {
        try {
          const { socket, hs } = await this.dial(s.addr)
          if (hs.peerId === this.hostId) { s.self = true; socket.destroy() } else {
            this.adopt(socket, hs, this.hostId, s.addr)
            s.attempt = 0
          }
        } catch (err) {
          if (err instanceof WireError && err.message.endsWith('connection to itself')) s.self = true
          else this.counters.inc('dialFailures')
        }
      }
      s.dialing = false
      if (this.closed || s.self) return
      // Once covered, the peer's own entry redials it; recheck now and then
      // in case the address moves to another host.
      const delay = this.seedCovered(s) ? this.o.backoff.maxMs : backoffDelay(s.attempt++, this.o.backoff)
      s.timer = setTimeout(() => { s.timer = null; this.maintainSeed(s) }, delay)
    })()
  }
}
