/**
 * `walkenfs recover --force-new-cluster DATA_DIR [--yes] [--accept-loss]`:
 * the day a majority of the hosts is lost for good, make one survivor the
 * whole cluster (docs/operations.md, "Losing a majority for good").
 *
 * Owns the I/O of the recovery: it opens the store offline (refused while a
 * daemon has it: the store's owner.pid), reads the identity, the Raft state
 * of every group and the catalog (with every entry of the schema log
 * applied), prints the plan (src/cluster/recovery.ts), asks for
 * confirmation, and writes the result in ONE lmdb transaction, synced
 * before it reports success: for every group held here the suffix of
 * src/raft/force.ts (this host the only voter, at a new term), for the
 * schema group also the catalog's `forceRecover` command, the removal of
 * empty replicas of lost groups (recreated at the next mount), and the new
 * cluster id in the identity. A crash before the commit changes nothing.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { unpack } from 'msgpackr'
import { applyCommand, decodeCatalog, emptyCatalog, encodeCommand, type Catalog, type CatalogCommand } from '../cluster/catalog.js'
import { IdentityStore } from '../cluster/identity.js'
import { SCHEMA_GROUP } from '../cluster/placement.js'
import { formatPlan, planRecovery, type RecoveryPlan } from '../cluster/recovery.js'
import { forceSoleVoter, summarize, type ReplicaSummary } from '../raft/force.js'
import type { WholeRaftInit } from '../raft/raft.js'
import { RaftStorage } from '../store/raft-storage.js'
import { Store, STORE_DIR } from '../store/store.js'

export interface RecoverArgs {
  dataDir: string
  yes: boolean
  acceptLoss: boolean
}

export interface RecoverIo {
  out: (line: string) => void
  err: (line: string) => void
  /** Whether a person can answer on a terminal. */
  interactive: boolean
  /** Asks a question on the terminal; resolves with the answer line. */
  ask: (question: string) => Promise<string>
}

/** Exit codes: 0 recovered, 1 refused or not confirmed (nothing changed), 2 cannot read or write the store. */
export async function runRecover (a: RecoverArgs, io: RecoverIo): Promise<number> {
  if (!existsSync(join(a.dataDir, STORE_DIR))) {
    io.err(`walkenfs recover: ${a.dataDir} holds no walkenfs store (${STORE_DIR}/ is missing); give the data directory of a surviving host`)
    return 2
  }
  let store: Store
  try {
    store = Store.open(a.dataDir)
  } catch (e) {
    io.err(`walkenfs recover: cannot open ${a.dataDir}: ${(e as Error).message}. The recovery works on a stopped host only: unmount it (walkenfs umount MOUNTPOINT) and run it again`)
    return 2
  }
  try {
    return await recoverOpen(store, a, io)
  } finally {
    await store.close()
  }
}

async function recoverOpen (store: Store, a: RecoverArgs, io: RecoverIo): Promise<number> {
  const root = store.lmdbRoot
  const sync = async (): Promise<void> => { store.noteCommit(); await store.flush() }
  const ids = new IdentityStore(root, sync)
  const identity = ids.read()
  if (identity === undefined) {
    io.err(`walkenfs recover: ${a.dataDir} is not a cluster host's data directory (no cluster identity in its store); there is nothing to recover`)
    return 1
  }
  const storage = new RaftStorage(root)
  const inits = new Map<string, WholeRaftInit>()
  const replicas: Record<string, ReplicaSummary> = {}
  for (const g of storage.groups()) {
    const init = storage.load(g)
    inits.set(g, init)
    replicas[g] = summarize(init, identity.node ?? 0)
  }
  const schema = inits.get(SCHEMA_GROUP)
  const catalog = schema !== undefined && !replicas[SCHEMA_GROUP]!.empty ? catalogWithLog(root.openDB({ name: 'catalog', encoding: 'binary' }).get(SCHEMA_GROUP) as Uint8Array | undefined, schema) : null
  const newClusterId = `${identity.clusterName}-${randomBytes(6).toString('hex')}`.slice(-64).replace(/^[^A-Za-z0-9]+/, '')
  const plan = planRecovery({ identity, catalog, replicas, newClusterId, acceptLoss: a.acceptLoss })
  io.out(formatPlan(plan))
  if (plan.refusal !== undefined) {
    io.err(`walkenfs recover: refused, nothing was changed: ${plan.refusal}`)
    return 1
  }
  if (!a.yes) {
    if (!io.interactive) {
      io.err('walkenfs recover: refused, nothing was changed: there is no terminal to confirm on; read the plan above and run it again with --yes')
      return 1
    }
    const answer = (await io.ask('\nType "force" to go on: ')).trim()
    if (answer !== 'force') {
      io.err('walkenfs recover: not confirmed; nothing was changed')
      return 1
    }
  }
  try {
    await apply(store, storage, ids, inits, plan, catalog!)
  } catch (e) {
    io.err(`walkenfs recover: writing the recovery failed, nothing was changed (one transaction): ${(e as Error).message}`)
    return 2
  }
  io.out('')
  io.out(`walkenfs recover: done. ${plan.host} is now the only host of cluster ${plan.cluster} (id ${plan.newClusterId}).`)
  io.out('  Mount it again with its usual options; it serves everything it held. Start new, empty hosts to get replicas back.')
  if (plan.dropped.length > 0) io.out(`  Do not start ${plan.dropped.map((h) => h.id).join(', ')} with their old data: move their data directories away first.`)
  return 0
}

/** The catalog after every entry of this host's schema log, also those beyond its commit index (the recovery commits them). */
export function catalogWithLog (row: Uint8Array | undefined, init: WholeRaftInit): Catalog {
  const c = row === undefined ? emptyCatalog() : decodeCatalog(row)
  for (const e of init.entries) {
    if (e.index <= init.applied || e.kind !== 'normal' || e.data === undefined) continue
    try { applyCommand(c, unpack(e.data) as CatalogCommand) } catch {} // the machine rejects such an entry the same way
  }
  return c
}

async function apply (store: Store, storage: RaftStorage, ids: IdentityStore, inits: Map<string, WholeRaftInit>, plan: RecoveryPlan, catalog: Catalog): Promise<void> {
  const at = Date.now()
  const kept = plan.groups.filter((g) => g.action === 'keep')
  const configIndexes: Record<string, number> = {}
  // The catalog's config indexes start at 1 (a group founded at index 0 is recorded as 1, as the actuator does).
  for (const g of kept) configIndexes[g.id] = Math.max(1, forceSoleVoter(inits.get(g.id)!, plan.node).configIndex)
  const cmd: CatalogCommand = { op: 'forceRecover', clusterId: plan.newClusterId, host: plan.host, at, configIndexes }
  // The schema machine would reject a bad command silently (as its apply result): check it on a copy first.
  const tried = applyCommand(structuredClone(catalog), cmd)
  if (!tried.ok) throw new Error(`the catalog refuses the recovery: ${tried.error}`)
  await store.lmdbRoot.transaction(() => {
    for (const g of kept) {
      const f = forceSoleVoter(inits.get(g.id)!, plan.node, g.id === SCHEMA_GROUP ? [encodeCommand(cmd)] : [])
      storage.writeReady(g.id, { hardState: f.hardState, entries: f.entries, messages: [], early: 0, committed: [], readStates: [] })
    }
    // An empty replica of a lost group would stop the next mount from founding it anew.
    for (const g of plan.groups) if (g.action === 'recreate' && inits.has(g.id)) storage.drop(g.id)
    ids.stageForceRecover(plan.newClusterId, at)
  })
  store.noteCommit()
  await store.flush()
}
