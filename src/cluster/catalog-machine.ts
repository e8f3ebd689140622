/**
 * The catalog as a Raft group state machine (the schema group).
 *
 * Owns: keeping the catalog of one group in lmdb, in the `catalog` database
 * under the group's id, and applying committed catalog commands to it.
 *
 * Promises: every method runs inside the host driver's write transaction, so
 * the catalog row changes atomically with the group's applied index (the
 * driver persists that index in the same transaction). A command that does
 * not decode or that the catalog rejects changes nothing; its error is the
 * apply result on every replica alike. The in-memory copy is always the
 * state of the last applied entry; lmdb holds the same state, so a reopened
 * machine continues from what was committed.
 */
import type { Database, RootDatabase } from 'lmdb'
import { unpack } from 'msgpackr'
import type { GroupStateMachine } from '../raft/host.js'
import type { Entry } from '../raft/types.js'
import { applyCommand, decodeCatalog, emptyCatalog, encodeCatalog, type ApplyResult, type Catalog, type CatalogCommand } from './catalog.js'

export class CatalogMachine implements GroupStateMachine {
  private readonly db: Database
  /** Every row is in the host's store, written with the applied index: snapshots are read from it (host.ts). */
  readonly liveSnapshots = true
  private state: Catalog

  constructor (root: RootDatabase, readonly group: string) {
    this.db = root.openDB({ name: 'catalog', encoding: 'binary' })
    this.state = this.load()
  }

  private load (): Catalog {
    const stored = this.db.get(this.group) as Uint8Array | undefined
    return stored === undefined ? emptyCatalog() : decodeCatalog(stored)
  }

  apply (e: Entry): ApplyResult {
    let cmd: CatalogCommand
    try {
      cmd = unpack(e.data!) as CatalogCommand
    } catch (err) {
      return { ok: false, error: `entry ${e.index} is not a catalog command: ${(err as Error).message}` }
    }
    let result: ApplyResult
    try {
      // applyCommand checks everything before its first change, so a rejection leaves the state as it was; no copy needed.
      result = applyCommand(this.state, cmd)
    } catch (err) {
      // Only a bug gets here, possibly halfway through a change: go back to the committed row, and let the host stop on the error.
      this.state = this.load()
      throw err
    }
    // The whole catalog is one row: it holds hosts, tables and group placements, not files, and one row keeps snapshots trivially consistent.
    if (result.ok) this.db.put(this.group, encodeCatalog(this.state))
    return result
  }

  restore (data: Uint8Array): void {
    const c = data.length === 0 ? emptyCatalog() : decodeCatalog(data)
    this.db.put(this.group, encodeCatalog(c))
    this.state = c
  }

  snapshot (): Uint8Array {
    return encodeCatalog(this.state)
  }

  /** Deletes the row (the host destroys this replica); runs inside the host's write transaction. */
  drop (): void {
    this.db.remove(this.group)
    this.state = emptyCatalog()
  }

  /** The current catalog; callers must not change it. */
  catalog (): Readonly<Catalog> {
    return this.state
  }
}
