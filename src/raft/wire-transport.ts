/**
 * The Raft transport over the peer wire (src/wire): host drivers in
 * different processes exchange their per-host batches over authenticated,
 * encrypted TCP links. Raft sits above the wire in DESIGN.md's layer table,
 * so this module lives here and imports the wire, never the reverse.
 *
 * What it owns and promises:
 * - Identity: a batch is accepted only from a wire peer whose (cookie-
 *   authenticated) host id maps to a Raft node id, and only the messages
 *   whose `from` is that node and whose `to` is this node; anything else is
 *   dropped and counted (`malformed`, `spoofed`). A host without the cookie
 *   never gets a link, so it never reaches Raft at all.
 * - Batching is the driver's: one `send(to, batch)` becomes one wire message
 *   (or a few, when the batch is larger than `maxMessageBytes`).
 * - Bounded memory under a slow or dead peer: at most `maxInflight` wire
 *   messages and `maxInflightBytes` (estimated) per peer are handed to the
 *   wire and not yet written to its socket. Beyond that a batch is dropped
 *   and counted (`droppedBusy`) instead of queued: Raft resends on its own
 *   (heartbeats, probes, snapshot retries), so a drop costs time, never
 *   safety. A send to a peer without a link fails fast in the wire and is
 *   counted (`droppedNoLink`); that is how "peer down" reaches Raft — as
 *   loss, which its election timeout and check-quorum already handle.
 * - Snapshots larger than `snapshotChunkBytes` do not ride in a batch: they
 *   travel as ordered chunks (one-way messages on the same link, each well
 *   under the wire's frame limit) and are reassembled on the receiver,
 *   holding only the bytes received so far, bounded by `maxSnapshotBytes`
 *   for all transfers together and `maxAssemblies` transfers at once. A transfer is abandoned on a gap (a link died
 *   mid-way), on a newer transfer for the same group from the same peer, or
 *   after `assemblyTimeoutMs`; the leader resends after its snapshot wait.
 *   At most one outgoing transfer per (peer, group) runs at once, and
 *   outgoing chunks wait for the wire's backpressure instead of dropping.
 */
import type { Wire } from '../wire/wire.js'
import type { Envelope, Transport } from './transport.js'
import type { Message, NodeId } from './types.js'

export interface WireTransportOptions {
  wire: Wire
  /** This host's Raft node id. */
  id: NodeId
  /** Wire host id of a Raft node; default its decimal string. */
  peerOf?: (node: NodeId) => string
  /** Raft node id of a wire host, or undefined if it is not a Raft node; default parses a decimal string. */
  nodeOf?: (peerId: string) => NodeId | undefined
  maxInflight?: number
  maxInflightBytes?: number
  /** Batches are split so one wire message carries at most about this many bytes. */
  maxMessageBytes?: number
  snapshotChunkBytes?: number
  /** Most snapshot bytes held while reassembling, all transfers together. */
  maxSnapshotBytes?: number
  maxAssemblies?: number
  assemblyTimeoutMs?: number
  maxSnapshotTransfers?: number
  /** Where unexpected send failures (e.g. a message over the wire's frame limit) are reported, at most one line per 10 s. */
  log?: (line: string) => void
}

export const WIRE_TRANSPORT_COUNTERS = ['batchesSent', 'batchesReceived', 'messagesReceived', 'droppedBusy', 'droppedNoLink',
  'droppedError', 'malformed', 'spoofed', 'snapshotsSent', 'snapshotsReceived', 'snapshotsAbandoned', 'snapshotsSkipped'] as const
export type WireTransportCounter = typeof WIRE_TRANSPORT_COUNTERS[number]

/** Tag of raft batches among the wire's one-way messages. */
const BATCH = 'raft.b'
/** Tag of a snapshot chunk. */
const CHUNK = 'raft.s'

interface PeerLoad { messages: number, bytes: number }

interface Assembly {
  id: number
  group: string
  head: Message
  total: number
  chunks: Uint8Array[]
  got: number
  started: number
}

function envelopeBytes (e: Envelope): number {
  let n = 64 + e.group.length
  for (const x of e.msg.entries ?? []) n += 32 + (x.data?.length ?? 0)
  if (e.msg.snapshot) n += 64 + e.msg.snapshot.data.length
  if (e.msg.context) n += e.msg.context.length
  return n
}

function isEntry (e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false
  const x = e as Record<string, unknown>
  return typeof x.index === 'number' && typeof x.term === 'number' && typeof x.kind === 'string' &&
    (x.data === undefined || x.data instanceof Uint8Array)
}

/** Shape checks, so that a buggy (authenticated) peer cannot throw inside the core. */
function isMessage (m: unknown): m is Message {
  if (typeof m !== 'object' || m === null) return false
  const x = m as Record<string, unknown>
  if (typeof x.type !== 'string' || typeof x.from !== 'number' || typeof x.to !== 'number' || typeof x.term !== 'number') return false
  if (x.entries !== undefined && (!Array.isArray(x.entries) || !x.entries.every(isEntry))) return false
  if (x.snapshot !== undefined) {
    const sn = x.snapshot as { meta?: { index?: unknown, term?: unknown, config?: unknown }, data?: unknown } | null
    if (typeof sn !== 'object' || sn === null || !(sn.data instanceof Uint8Array) || typeof sn.meta?.index !== 'number' ||
      typeof sn.meta.term !== 'number' || typeof sn.meta.config !== 'object' || sn.meta.config === null) return false
  }
  return true
}

export class WireTransport implements Transport {
  readonly counters = Object.fromEntries(WIRE_TRANSPORT_COUNTERS.map((k) => [k, 0])) as Record<WireTransportCounter, number>
  private readonly wire: Wire
  private readonly o: Required<Omit<WireTransportOptions, 'wire'>>
  private readonly load = new Map<string, PeerLoad>()
  private readonly assemblies = new Map<string, Assembly>()
  private readonly outgoing = new Set<string>()
  private handler: ((from: NodeId, batch: Envelope[]) => void) | undefined
  private nextTransfer = 1
  private lastLog = 0
  private closed = false
  private readonly onMessage = (peerId: string, body: unknown): void => this.receive(peerId, body)

  constructor (options: WireTransportOptions) {
    this.wire = options.wire
    this.o = {
      peerOf: (n) => String(n),
      nodeOf: (p) => /^[1-9]\d{0,14}$/.test(p) ? Number(p) : undefined,
      maxInflight: 64,
      maxInflightBytes: 32 << 20,
      maxMessageBytes: 4 << 20,
      snapshotChunkBytes: 1 << 20,
      maxSnapshotBytes: 1 << 30,
      maxAssemblies: 16,
      assemblyTimeoutMs: 30_000,
      maxSnapshotTransfers: 4,
      log: (line) => { console.error(line) },
      ...options
    }
    if (this.o.snapshotChunkBytes >= this.o.maxMessageBytes) {
      throw new Error(`snapshotChunkBytes (${this.o.snapshotChunkBytes}) must be below maxMessageBytes (${this.o.maxMessageBytes})`)
    }
    this.wire.on('message', this.onMessage)
  }

  /** Wire messages handed over and not yet written, per peer (status and tests). */
  inflight (to: NodeId): number { return this.load.get(this.o.peerOf(to))?.messages ?? 0 }

  send (to: NodeId, batch: Envelope[]): void {
    if (this.closed) return
    const peer = this.o.peerOf(to)
    let part: Envelope[] = []
    let bytes = 0
    for (const e of batch) {
      if (e.msg.snapshot && e.msg.snapshot.data.length > this.o.snapshotChunkBytes) {
        this.sendSnapshot(peer, e)
        continue
      }
      const b = envelopeBytes(e)
      if (part.length > 0 && bytes + b > this.o.maxMessageBytes) {
        this.sendPart(peer, part, bytes)
        part = []
        bytes = 0
      }
      part.push(e)
      bytes += b
    }
    if (part.length > 0) this.sendPart(peer, part, bytes)
  }

  listen (handler: (from: NodeId, batch: Envelope[]) => void): void { this.handler = handler }

  close (): void {
    this.closed = true
    this.handler = undefined
    this.wire.off('message', this.onMessage)
    this.assemblies.clear()
  }

  private sendPart (peer: string, part: Envelope[], bytes: number): void {
    let l = this.load.get(peer)
    if (!l) this.load.set(peer, l = { messages: 0, bytes: 0 })
    if (l.messages >= this.o.maxInflight || l.bytes + bytes > this.o.maxInflightBytes) {
      this.counters.droppedBusy++
      return
    }
    const load = l
    load.messages++
    load.bytes += bytes
    this.counters.batchesSent++
    this.wire.send(peer, [BATCH, part]).catch((err: Error) => this.failed(peer, err)).finally(() => { load.messages--; load.bytes -= bytes })
  }

  /** Streams one snapshot message as ordered chunks, waiting for the wire's backpressure between them. */
  private sendSnapshot (peer: string, e: Envelope): void {
    const key = `${peer}\0${e.group}`
    if (this.outgoing.has(key) || this.outgoing.size >= this.o.maxSnapshotTransfers) {
      // The leader resends after its snapshot wait; one transfer per follower and group is enough.
      this.counters.snapshotsSkipped++
      return
    }
    this.outgoing.add(key)
    const id = this.nextTransfer++
    const data = e.msg.snapshot!.data
    const head: Message = { ...e.msg, snapshot: { meta: e.msg.snapshot!.meta, data: new Uint8Array(0) } }
    const step = this.o.snapshotChunkBytes
    void (async () => {
      try {
        for (let off = 0, seq = 0; off < data.length; off += step, seq++) {
          if (this.closed) return
          const chunk = data.subarray(off, Math.min(data.length, off + step))
          await this.wire.send(peer, [CHUNK, id, seq, e.group, seq === 0 ? head : null, data.length, off, chunk])
        }
        this.counters.snapshotsSent++
      } catch (err) {
        this.failed(peer, err as Error)
      } finally {
        this.outgoing.delete(key)
      }
    })()
  }

  /** Loss to a peer without a link is routine (Raft resends); anything else is a misconfiguration worth a line. */
  private failed (peer: string, err: Error): void {
    if ((err as { code?: string }).code === 'ELINKDOWN') { this.counters.droppedNoLink++; return }
    this.counters.droppedError++
    const now = Date.now()
    if (now - this.lastLog >= 10_000) {
      this.lastLog = now
      this.o.log(`walkenfs raft: a message to ${peer} was dropped: ${err.message} (dropped so far: ${this.counters.droppedError})`)
    }
  }

  private receive (peerId: string, body: unknown): void {
    if (this.closed || !Array.isArray(body) || (body[0] !== BATCH && body[0] !== CHUNK)) return
    const from = this.o.nodeOf(peerId)
    if (from === undefined) { this.counters.spoofed++; return }
    if (body[0] === CHUNK) { this.chunk(peerId, from, body); return }
    const raw = body[1]
    if (!Array.isArray(raw)) { this.counters.malformed++; return }
    const batch: Envelope[] = []
    for (const e of raw as unknown[]) {
      const env = e as { group?: unknown, msg?: unknown }
      if (typeof env !== 'object' || env === null || typeof env.group !== 'string' || !isMessage(env.msg)) { this.counters.malformed++; continue }
      if (env.msg.from !== from || env.msg.to !== this.o.id) { this.counters.spoofed++; continue }
      batch.push({ group: env.group, msg: env.msg })
    }
    if (batch.length === 0) return
    this.counters.batchesReceived++
    this.counters.messagesReceived += batch.length
    this.handler?.(from, batch)
  }

  private chunk (peerId: string, from: NodeId, b: unknown[]): void {
    const [, id, seq, group, head, total, off, chunk] = b
    if (typeof id !== 'number' || typeof seq !== 'number' || typeof group !== 'string' || typeof total !== 'number' ||
      typeof off !== 'number' || !(chunk instanceof Uint8Array)) { this.counters.malformed++; return }
    const key = `${peerId}\0${group}`
    const now = Date.now()
    for (const [k, a] of this.assemblies) {
      if (now - a.started > this.o.assemblyTimeoutMs) { this.assemblies.delete(k); this.counters.snapshotsAbandoned++ }
    }
    let a = this.assemblies.get(key)
    if (seq === 0) {
      if (a) { this.assemblies.delete(key); this.counters.snapshotsAbandoned++ }
      if (!isMessage(head) || head.type !== 'snap' || !head.snapshot) { this.counters.malformed++; return }
      if (head.from !== from || head.to !== this.o.id) { this.counters.spoofed++; return }
      let held = 0
      for (const x of this.assemblies.values()) held += x.total
      if (!Number.isSafeInteger(total) || total <= 0 || held + total > this.o.maxSnapshotBytes || this.assemblies.size >= this.o.maxAssemblies) {
        this.counters.snapshotsAbandoned++
        return
      }
      a = { id, group, head, total, chunks: [], got: 0, started: now }
      this.assemblies.set(key, a)
    }
    if (!a || a.id !== id || off !== a.got || off + chunk.length > a.total) {
      // A gap: a link died mid-transfer, or a chunk of an abandoned transfer.
      if (a) { this.assemblies.delete(key); this.counters.snapshotsAbandoned++ }
      return
    }
    a.chunks.push(chunk)
    a.got += chunk.length
    if (a.got < a.total) return
    this.assemblies.delete(key)
    this.counters.snapshotsReceived++
    const msg: Message = { ...a.head, snapshot: { meta: a.head.snapshot!.meta, data: Buffer.concat(a.chunks, a.total) } }
    this.counters.batchesReceived++
    this.counters.messagesReceived++
    this.handler?.(from, [{ group: a.group, msg }])
  }
}
