/**
 * A key-value state machine over a real lmdb database, for driver tests and
 * benchmarks: rows live in the `kv` database under [group, key] and change
 * in the host's write transaction, next to the applied index.
 */
import type { Database, RootDatabase } from 'lmdb'
import { pack, unpack } from 'msgpackr'
import type { GroupStateMachine } from '../../src/raft/host.js'
import type { Entry } from '../../src/raft/types.js'

export class KvMachine implements GroupStateMachine {
  readonly db: Database
  /** `live`: the rows are the snapshot (GroupStateMachine.liveSnapshots), as for the fragment machine */
  constructor (root: RootDatabase, readonly group: string, readonly liveSnapshots = false, readonly self?: number) {
    this.db = root.openDB({ name: 'kv' })
  }

  apply (e: Entry): unknown {
    const { k, v } = unpack(e.data!) as { k: string, v: string }
    this.db.put([this.group, k], v)
    return v
  }

  restore (data: Uint8Array): void {
    for (const { key } of this.db.getRange({ start: [this.group, ''], end: [this.group, '\uffff'] })) this.db.remove(key)
    if (data.length === 0) return
    for (const [k, v] of unpack(data) as Array<[string, string]>) this.db.put([this.group, k], v)
  }

  snapshot (): Uint8Array {
    const rows: Array<[string, string]> = []
    for (const { key, value } of this.db.getRange({ start: [this.group, ''], end: [this.group, '\uffff'] })) rows.push([(key as unknown as string[])[1], value as string])
    return pack(rows)
  }

  get (k: string): string | undefined {
    return this.db.get([this.group, k]) as string | undefined
  }

  /** For a host's CacheGate: the key an entry writes, if it names the host that proposed it (encode's `origin`). */
  cacheKeys (data: Uint8Array): { local: boolean, rows: string[] } | undefined {
    const { k, o } = unpack(data) as { k: string, o?: number }
    return o === undefined ? undefined : { local: o === this.self, rows: [k] }
  }

  static encode (k: string, v: string, origin?: number): Uint8Array {
    return pack(origin === undefined ? { k, v } : { k, v, o: origin })
  }
}
