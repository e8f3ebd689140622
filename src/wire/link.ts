/**
 * One authenticated TCP connection to a peer, after the handshake: frame
 * protection, message dispatch, heartbeats, RPC bookkeeping and the bounded
 * send queue.
 *
 * Promises:
 * - Bounded memory: at most `maxQueued` messages wait to be written (then
 *   senders wait; beyond `maxBlockedSenders` waiting senders, send fails
 *   with EQUEUEFULL); when the kernel buffer is full the queue waits for
 *   'drain', so a slow peer slows its senders. At most `maxInflight`
 *   requests are served at once; then reading pauses (frames already read
 *   wait in order), which in turn slows the peer. Handlers should finish
 *   within the link timeout: a link paused that long looks dead.
 * - A silent path is noticed: a link that hears nothing (not even a pong)
 *   for `linkTimeoutMs` destroys its socket, which also ends TCP's
 *   retransmissions. The kernel's own timeouts are aligned with it
 *   (TCP_USER_TIMEOUT = link timeout, keepalive ≈ heartbeat; see
 *   tcp-tune.ts), so kernel and wire give up on a dead path together.
 * - Any protocol error (bad frame, failed authentication, wrong version)
 *   closes the link with a reason; it never throws into the caller.
 * - Every pending call settles: with the response, its deadline, its
 *   abort signal, or the link's end (ELINKDOWN).
 */
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import PQueue from 'p-queue'
import { FrameOpener, FrameSealer, TAG_BYTES } from './cipher.js'
import { WireError } from './errors.js'
import { FrameDecoder, frameHeader } from './framing.js'
import type { HandshakeResult } from './handshake.js'
import { Kind, decodeMessage, encodeMessage, type Message } from './messages.js'
import { socketTimeouts, tuneSocket } from './tcp-tune.js'

export interface LinkSettings {
  maxFrameBytes: number
  heartbeatMs: number
  linkTimeoutMs: number
  maxQueued: number
  maxBlockedSenders: number
  maxInflight: number
}

export type RequestHandler = (payload: unknown, ctx: { peerId: string, signal: AbortSignal }) => Promise<unknown> | unknown

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout, cleanup: () => void }

export class Link extends EventEmitter {
  readonly peerId: string
  readonly peerAddrs: string[]
  /** Host id of the side that dialed; used to break ties between duplicate links. */
  readonly dialer: string
  /** The address this link runs over ("host:port" of the listener). */
  readonly addr: string
  lastHeard = Date.now()
  /** Why the kernel timeouts could not be aligned, or null. */
  readonly tcpProblem: string | null
  closed = false
  closeReason = ''

  private readonly decoder: FrameDecoder
  private readonly sealer: FrameSealer | null
  private readonly opener: FrameOpener | null
  private readonly queue = new PQueue({ concurrency: 1 })
  private blockedSenders = 0
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private readonly inflight = new Map<number, AbortController>()
  private readonly heartbeat: NodeJS.Timeout
  private paused = false
  /**
   * Frames received but not yet handled: at most one socket read's worth,
   * because reading pauses while `maxInflight` requests are being served.
   */
  private backlog: Buffer[] = []

  constructor (private readonly socket: Socket, hs: HandshakeResult, dialer: string, addr: string,
    private readonly settings: LinkSettings, private readonly handlerFor: (method: string) => RequestHandler | undefined) {
    super()
    this.peerId = hs.peerId
    this.peerAddrs = hs.peerAddrs
    this.dialer = dialer
    this.addr = addr
    this.decoder = new FrameDecoder(settings.maxFrameBytes + (hs.encrypt ? TAG_BYTES : 0))
    this.sealer = hs.encrypt ? new FrameSealer(hs.txKey) : null
    this.opener = hs.encrypt ? new FrameOpener(hs.rxKey) : null
    socket.setNoDelay(true)
    socket.setKeepAlive(true, settings.heartbeatMs)
    this.tcpProblem = tuneSocket(socket, settings.heartbeatMs, settings.linkTimeoutMs)
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    socket.on('error', (err) => this.close(`socket error: ${err.message}`))
    socket.on('close', () => this.close('connection closed by peer'))
    socket.on('end', () => this.close('connection closed by peer'))
    this.heartbeat = setInterval(() => this.beat(), settings.heartbeatMs)
    if (hs.leftover.length > 0) queueMicrotask(() => this.receive(hs.leftover))
  }

  /** Queues a one-way message; resolves once it is handed to the socket. */
  async send (body: unknown): Promise<void> {
    await this.enqueue({ kind: Kind.Send, body })
  }

  /** Sends a request and resolves with the peer's answer. */
  call (method: string, payload: unknown, deadlineMs: number, signal?: AbortSignal): Promise<unknown> {
    if (this.closed) return Promise.reject(new WireError('ELINKDOWN', `link to ${this.peerId} is down: ${this.closeReason}`))
    if (signal?.aborted) return Promise.reject(new WireError('ECANCELED', `call ${method} to ${this.peerId} was canceled`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.settle(id, new WireError('ECANCELED', `call ${method} to ${this.peerId} was canceled`))
        this.enqueue({ kind: Kind.Cancel, id }).catch(() => {})
      }
      const timer = setTimeout(() => {
        this.settle(id, new WireError('ETIMEDOUT', `call ${method} to ${this.peerId} got no answer within ${deadlineMs} ms`))
        this.enqueue({ kind: Kind.Cancel, id }).catch(() => {})
      }, deadlineMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(id, { resolve, reject, timer, cleanup: () => signal?.removeEventListener('abort', onAbort) })
      this.enqueue({ kind: Kind.Request, id, method, payload, deadlineMs }).catch((err: Error) => this.settle(id, err))
    })
  }

  close (reason: string): void {
    if (this.closed) return
    this.closed = true
    this.closeReason = reason
    clearInterval(this.heartbeat)
    this.socket.destroy()
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new WireError('ELINKDOWN', `link to ${this.peerId} went down: ${reason}`))
    }
    for (const ac of this.inflight.values()) ac.abort()
    this.inflight.clear()
    this.emit('close', reason)
  }

  /** The socket's kernel timeouts: [TCP_USER_TIMEOUT ms, keepidle s, keepintvl s, keepcnt]. */
  tcpTimeouts (): number[] | null { return this.closed ? null : socketTimeouts(this.socket) }

  /** Messages waiting in the send queue (for tests and status). */
  get queued (): number { return this.queue.size + this.queue.pending }

  private settle (id: number, err: Error | null, value?: unknown): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    clearTimeout(p.timer)
    p.cleanup()
    if (err) p.reject(err)
    else p.resolve(value)
  }

  private async enqueue (m: Message): Promise<void> {
    if (this.closed) throw new WireError('ELINKDOWN', `link to ${this.peerId} is down: ${this.closeReason}`)
    if (this.queue.size >= this.settings.maxQueued) {
      if (this.blockedSenders >= this.settings.maxBlockedSenders) {
        throw new WireError('EQUEUEFULL', `${this.blockedSenders} senders already wait for the queue to ${this.peerId}`)
      }
      this.blockedSenders++
      try {
        while (this.queue.size >= this.settings.maxQueued && !this.closed) await this.queue.onSizeLessThan(this.settings.maxQueued)
      } finally { this.blockedSenders-- }
      if (this.closed) throw new WireError('ELINKDOWN', `link to ${this.peerId} is down: ${this.closeReason}`)
    }
    await this.queue.add(async () => {
      if (this.closed) throw new WireError('ELINKDOWN', `link to ${this.peerId} is down: ${this.closeReason}`)
      const plain = encodeMessage(m)
      if (plain.length > this.settings.maxFrameBytes) {
        throw new WireError('EPROTO', `message of ${plain.length} bytes exceeds the frame limit of ${this.settings.maxFrameBytes}`)
      }
      const frame = this.sealer ? this.sealer.seal(plain) : Buffer.concat([frameHeader(plain.length), plain])
      if (!this.socket.write(frame)) await this.drained()
    })
  }

  private drained (): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { this.socket.off('drain', done); this.off('close', done); resolve() }
      this.socket.on('drain', done)
      this.on('close', done)
    })
  }

  private beat (): void {
    const silent = Date.now() - this.lastHeard
    if (silent > this.settings.linkTimeoutMs) {
      this.close(`heard nothing for ${silent} ms (link timeout ${this.settings.linkTimeoutMs} ms)`)
      return
    }
    this.writeNow({ kind: Kind.Ping, stamp: Date.now() })
  }

  private writeNow (m: Message): void {
    // While the queue is busy the peer hears our data frames anyway, and a
    // heartbeat must not wait behind them; frame order (the cipher counts
    // frames) holds because sealing and writing happen in one step.
    if (this.closed || this.queue.pending > 0 || this.queue.size > 0) return
    const plain = encodeMessage(m)
    this.socket.write(this.sealer ? this.sealer.seal(plain) : Buffer.concat([frameHeader(plain.length), plain]))
  }

  private receive (chunk: Buffer): void {
    if (this.closed) return
    this.lastHeard = Date.now()
    try {
      this.backlog.push(...this.decoder.push(chunk))
    } catch (err) {
      this.protocolError(err)
      return
    }
    this.drainBacklog()
  }

  /** Handles received frames in order, stopping while reading is paused. */
  private drainBacklog (): void {
    try {
      while (this.backlog.length > 0 && !this.paused && !this.closed) {
        const frame = this.backlog.shift()!
        this.dispatch(decodeMessage(this.opener ? this.opener.open(frame) : frame))
      }
    } catch (err) {
      this.protocolError(err)
    }
  }

  private protocolError (err: unknown): void {
    const e = err instanceof WireError ? err : new WireError('EPROTO', (err as Error).message)
    this.emit('protoError', e)
    this.close(`protocol error: ${e.message}`)
  }

  private dispatch (m: Message): void {
    switch (m.kind) {
      case Kind.Send: this.emit('message', m.body); break
      case Kind.Ping: this.writeNow({ kind: Kind.Pong, stamp: m.stamp }); break
      case Kind.Pong: break
      case Kind.Response:
        if (m.ok) this.settle(m.id, null, m.payload)
        else {
          const p = m.payload as { code?: unknown, message?: unknown } | null
          const code = p?.code === 'ENOMETHOD' ? 'ENOMETHOD' : 'EREMOTE'
          this.settle(m.id, new WireError(code, `${this.peerId}: ${String(p?.message ?? 'remote error')}`))
        }
        break
      case Kind.Cancel: this.inflight.get(m.id)?.abort(); break
      case Kind.Request: this.serve(m.id, m.method, m.payload, m.deadlineMs); break
    }
  }

  private serve (id: number, method: string, payload: unknown, deadlineMs: number): void {
    const handler = this.handlerFor(method)
    if (!handler) {
      this.enqueue({ kind: Kind.Response, id, ok: false, payload: { code: 'ENOMETHOD', message: `no handler for method ${JSON.stringify(method)}` } }).catch(() => {})
      return
    }
    if (this.inflight.has(id)) return // a duplicate id from a confused peer: answer once
    const ac = new AbortController()
    this.inflight.set(id, ac)
    const timer = setTimeout(() => ac.abort(), deadlineMs)
    if (this.inflight.size >= this.settings.maxInflight && !this.paused) { this.paused = true; this.socket.pause() }
    Promise.resolve().then(() => handler(payload, { peerId: this.peerId, signal: ac.signal })).then(
      (result) => ({ ok: true, payload: result }),
      (err: Error) => ({ ok: false, payload: { code: 'EREMOTE', message: err?.message ?? String(err) } }),
    ).then((r) => {
      clearTimeout(timer)
      this.inflight.delete(id)
      if (this.paused && this.inflight.size < this.settings.maxInflight) {
        this.paused = false
        this.socket.resume()
        this.drainBacklog()
      }
      if (ac.signal.aborted || this.closed) return // the caller gave up: no one reads the answer
      this.enqueue({ kind: Kind.Response, id, ok: r.ok, payload: r.payload }).catch(() => {})
    })
  }
}
