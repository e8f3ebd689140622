/**
 * This host's persisted cluster identity: {hostId, clusterName, clusterId,
 * node}, one row in the lmdb database `cluster` of the host's store.
 *
 * Owns: reading, checking and writing that row.
 *
 * Promises:
 * - the host id and cluster name are fixed at first start: a later start
 *   with another `host=` or `cluster=` is refused with an error naming both
 *   values (the data belongs to the stored ones);
 * - `clusterId` and `node` are written once (bootstrap or join) and never
 *   change through `setMember`; writing different ones is refused. Only a
 *   forced recovery (`forceRecover`, offline) gives the host a new cluster id;
 * - every write is synced before the promise resolves.
 */
import type { Database, RootDatabase } from 'lmdb'

export interface Identity {
  hostId: string
  clusterName: string
  /** Null until this host bootstraps or joins a cluster. */
  clusterId: string | null
  /** Raft node number handed out by the catalog; null until then. */
  node: number | null
  /** Set while this host founds the cluster and its schema group does not exist yet (a restart finishes it). */
  bootstrapping?: boolean
  /** Set by a forced recovery on this host: the cluster id it replaced and when (ms). */
  recovered?: { previousId: string, at: number }
}

const KEY = 'identity'

export class IdentityStore {
  private readonly db: Database

  constructor (private readonly root: RootDatabase, private readonly sync: () => Promise<void>) {
    this.db = root.openDB({ name: 'cluster', encoding: 'msgpack', keyEncoding: 'ordered-binary' })
  }

  read (): Identity | undefined {
    return this.db.get(KEY) as Identity | undefined
  }

  /**
   * The identity for a start with `hostId` (undefined: the stored one, else
   * `fallbackId`) and `clusterName`; written at first start.
   */
  async open (hostId: string | undefined, fallbackId: string, clusterName: string): Promise<Identity> {
    const stored = this.read()
    if (stored) {
      if (hostId !== undefined && hostId !== stored.hostId) {
        throw new Error(`this data directory belongs to host ${JSON.stringify(stored.hostId)}, but host=${hostId} was given; ` +
          `start with host=${stored.hostId} (or no host=), or use an empty data directory for a new host`)
      }
      if (clusterName !== stored.clusterName) {
        throw new Error(`this data directory belongs to cluster ${JSON.stringify(stored.clusterName)}, but cluster=${clusterName} was given; ` +
          `start with cluster=${stored.clusterName}, or use an empty data directory to join another cluster`)
      }
      return stored
    }
    const id: Identity = { hostId: hostId ?? fallbackId, clusterName, clusterId: null, node: null }
    await this.write(id)
    return id
  }

  /** Records membership of cluster `clusterId` as Raft node `node` (`bootstrapping`: this host founds it). */
  async setMember (clusterId: string, node: number, bootstrapping = false): Promise<Identity> {
    const cur = this.read()
    if (!cur) throw new Error('identity not opened')
    if (cur.clusterId !== null && (cur.clusterId !== clusterId || cur.node !== node)) {
      throw new Error(`host ${cur.hostId} already belongs to cluster id ${cur.clusterId} as node ${String(cur.node)}; refusing to record cluster id ${clusterId} node ${node}`)
    }
    const next: Identity = { ...cur, clusterId, node }
    if (bootstrapping) next.bootstrapping = true
    await this.write(next)
    return next
  }

  /** The founding host's schema group exists: nothing left to redo after a restart. */
  async finishBootstrap (): Promise<Identity> {
    const cur = this.read()
    if (!cur) throw new Error('identity not opened')
    const next: Identity = { hostId: cur.hostId, clusterName: cur.clusterName, clusterId: cur.clusterId, node: cur.node }
    if (cur.recovered) next.recovered = cur.recovered
    await this.write(next)
    return next
  }

  /**
   * A forced recovery on this host (walkenfs recover --force-new-cluster):
   * the cluster continues under `clusterId`; the node number stays.
   * The caller writes it inside its own write transaction (with the Raft
   * changes), so `stage` does not sync.
   */
  stageForceRecover (clusterId: string, at: number): Identity {
    const cur = this.read()
    if (!cur || cur.clusterId === null || cur.node === null) throw new Error('this host is not a member of a cluster; there is nothing to recover')
    const next: Identity = { hostId: cur.hostId, clusterName: cur.clusterName, clusterId, node: cur.node, recovered: { previousId: cur.clusterId, at } }
    this.db.put(KEY, next)
    return next
  }

  private async write (id: Identity): Promise<void> {
    // Synchronous, like every write of the Raft host in this environment (src/raft/host.ts, writeSync).
    this.root.transactionSync(() => { this.db.putSync(KEY, id) })
    await this.sync()
  }
}
