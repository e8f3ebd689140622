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
 *   change; writing different ones is refused;
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
    await this.write(next)
    return next
  }

  private async write (id: Identity): Promise<void> {
    await this.root.transaction(() => { this.db.put(KEY, id) })
    await this.sync()
  }
}
