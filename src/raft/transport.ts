/**
 * The transport contract the host driver needs, and an in-process
 * implementation for tests and benchmarks (the TCP one belongs to src/wire).
 *
 * A host sends one batch per destination host per cycle: all of its groups'
 * messages to that host, heartbeats included, travel together. Delivery is
 * best effort (Raft tolerates loss, duplication and reordering).
 */
import { pack, unpack } from 'msgpackr'
import type { Message, NodeId } from './types.js'

export interface Envelope {
  group: string
  msg: Message
}

export interface Transport {
  send (to: NodeId, batch: Envelope[]): void
  listen (handler: (from: NodeId, batch: Envelope[]) => void): void
  close (): void
}

/**
 * Hosts in one process. Batches are encoded and decoded with msgpack on the
 * way, so no object is shared between hosts, and delivered on a later turn
 * of the event loop. Links can be cut for tests.
 */
export class LocalNetwork {
  private handlers = new Map<NodeId, (from: NodeId, batch: Envelope[]) => void>()
  private cut = new Set<string>()
  batches = 0
  messages = 0
  /** Called as each batch is handed over, before delivery (tests check what the sender had persisted). */
  observer: ((from: NodeId, to: NodeId, batch: Envelope[]) => void) | undefined

  endpoint (id: NodeId): Transport {
    return {
      send: (to, batch) => {
        if (this.cut.has(`${id}>${to}`)) return
        this.batches++
        this.messages += batch.length
        this.observer?.(id, to, batch)
        const bytes = pack(batch)
        setImmediate(() => {
          const h = this.handlers.get(to)
          if (h && !this.cut.has(`${id}>${to}`)) h(id, unpack(bytes) as Envelope[])
        })
      },
      listen: (handler) => { this.handlers.set(id, handler) },
      close: () => { this.handlers.delete(id) }
    }
  }

  /** Cuts (or with `up`, restores) both directions between a and b. */
  setLink (a: NodeId, b: NodeId, up: boolean): void {
    for (const k of [`${a}>${b}`, `${b}>${a}`]) {
      if (up) this.cut.delete(k)
      else this.cut.add(k)
    }
  }
}
