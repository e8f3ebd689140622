/**
 * The daemon body of a cluster mount (`cluster=` given): opens the store,
 * starts the cluster node (src/cluster/node.ts), waits until this host is a
 * member and every fragment has a leader (telling the waiting `walkenfs
 * mount` how it goes), then serves the filesystem model over the replicated
 * tables through FUSE (serve.ts), with `status`, `retire` and
 * `check-replicas` on the control socket.
 *
 * Decisions:
 * - the mount appears only once the filesystem is usable; `walkenfs mount`
 *   waits for it (and shows progress), so an fstab line with `_netdev`
 *   behaves like any network filesystem at boot;
 * - orphans (unlinked files still open) are not freed at mount in cluster
 *   mode: another host may hold them open. They stay until the host that
 *   unlinked them releases them (a host that crashes meanwhile leaks them
 *   until `walkenfs check` frees them — written down in docs/replication.md).
 */
import { hostname } from 'node:os'
import { ClusterNode, FS_TABLE } from '../cluster/node.js'
import { IdentityStore } from '../cluster/identity.js'
import { ModelFs } from '../fs/model.js'
import { openElsewhere, serveSharedOpens } from './shared-opens.js'
import { checkFs } from '../fs/check.js'
import { Store } from '../store/store.js'
import { FragmentMachine } from '../tables/fragment-machine.js'
import { MAX_FRAGMENTS } from '../tables/local.js'
import { FragmentRouter } from '../tables/router.js'
import { ChangeFeeds } from '../tables/change-feed.js'
import { ChangeMarks } from '../tables/change-marks.js'
import { ClusterChangeSource } from '../tables/change-source.js'
import { watchStream } from './watch.js'
import { ReplicatedTables } from '../tables/replicated.js'
import { checkReplicas, serveDigests, type LocalReplicas } from '../tables/replica-check.js'
import { repairFragment } from '../tables/replica-repair.js'
import { readCookieFile } from '../wire/cookie.js'
import { clusterView, exitCodeOf } from './cluster-status.js'
import { fuseCalls } from '../fuse/fuse-ops.js'
import { KernelCache } from '../fuse/kernel-cache.js'
import type { ClusterMountSettings } from './cluster-options.js'
import { progressToParent } from './daemon.js'
import type { MountSettings } from './mount-options.js'
import { fail, log, serveFuse, waitForStore } from './serve.js'

const SWEEP_EVERY_MS = 10_000

export interface RunningCluster {
  store: Store
  node: ClusterNode
  router: FragmentRouter
  tables: ReplicatedTables
  local: LocalReplicas
  /** the change feeds of this host's replicas, for `walkenfs watch` */
  changes: ClusterChangeSource
  close (): Promise<void>
}

/** Starts the node on an open store; resolves once it is ready (member, every fragment led). */
export async function startCluster (store: Store, c: ClusterMountSettings, fragments: number | null, mode: 'auto' | 'init',
  say: (line: string) => void): Promise<RunningCluster> {
  const h = c.host
  const cookie = readCookieFile(h.cookie)
  const fragmentOf = (g: string): number | null => {
    const m = /^fs\/(\d+)$/.exec(g)
    return m ? Number(m[1]) : null
  }
  let node: ClusterNode | null = null
  const feeds = new ChangeFeeds()
  const marks = new ChangeMarks()
  const fsFragments = (): number => {
    const t = node!.catalog().tables.find((x) => x.name === FS_TABLE)
    if (!t) throw new Error('the catalog has no fs table yet')
    return t.fragments
  }
  node = new ClusterNode({
    store,
    hostId: h.id,
    defaultHostId: hostname(),
    clusterName: h.cluster,
    cookie,
    mode,
    expect: c.expect,
    settings: {
      ...(c.copies !== null ? { copies: c.copies } : {}),
      ...(fragments !== null ? { fragments } : {}),
      ...(c.replaceAfterMs !== null ? { replaceAfterMs: c.replaceAfterMs } : {}),
      ...(c.quorumWaitMs !== null ? { quorumWaitMs: c.quorumWaitMs } : {}),
      ...(c.schemaVoters !== null ? { schemaVoters: c.schemaVoters } : {})
    },
    machineFor: (g) => {
      const f = fragmentOf(g)
      if (f === null) throw new Error(`no state machine for group ${g}`)
      // The fragment count is only a range check in the machine; a joining host may be asked to hold
      // a replica before its copy of the catalog has the fs table, so it must not depend on it.
      return new FragmentMachine(store, f, MAX_FRAGMENTS, feeds.of(f), marks, () => node!.self)
    },
    listenHost: h.listen,
    port: h.port,
    advertise: h.advertise ?? undefined,
    encrypt: h.encrypt,
    peers: h.peers,
    peersCmd: h.peersCmd,
    mcast: h.mcast ? { group: h.mcastGroup, port: h.mcastPort, ttl: h.mcastTtl, ifaces: h.mcastIfaces, intervalMs: h.beaconMs } : null,
    heartbeatMs: h.heartbeatMs,
    linkTimeoutMs: h.linkTimeoutMs,
    connectTimeoutMs: h.connectTimeoutMs,
    suspectAfterMs: h.suspectAfterMs,
    downAfterMs: h.downAfterMs,
    log: say
  })
  await node.start()
  await node.ready()
  const n = node
  const router = new FragmentRouter(n, store, {}, marks)
  const tables = new ReplicatedTables(router, fsFragments())
  const changes = new ClusterChangeSource(router, feeds, fsFragments())
  const local: LocalReplicas = {
    fragmentOf: (g) => n.hasGroup(g) ? fragmentOf(g) : null,
    applied: (g) => n.hasGroup(g) ? ((n.raft.storage.db.get([g, 'a']) as number | undefined) ?? 0) : null
  }
  serveDigests(n, store, local)
  // Recovers transactions whose coordinator died and drops old bookkeeping, on the fragments this host leads.
  let sweeping: Promise<unknown> | null = null
  const sweeper = setInterval(() => {
    if (sweeping) return
    sweeping = tables.sweepLeading().catch((e: Error) => say(`sweep of abandoned transactions: ${e.message}`)).finally(() => { sweeping = null })
  }, SWEEP_EVERY_MS)
  return {
    store, node: n, router, tables, local, changes,
    close: async () => {
      clearInterval(sweeper)
      await sweeping
      await tables.close()
      router.close()
      await n.close()
      await store.close()
    }
  }
}

/**
 * `walkenfs init`: makes this data directory the first host of a new
 * cluster (a one-host cluster on purpose), waits until its filesystem
 * exists, and stops. Refused when the directory already belongs to one.
 */
export async function initCluster (data: string, settings: MountSettings, say: (line: string) => void): Promise<{ clusterId: string, hostId: string }> {
  const store = Store.open(data)
  let running: RunningCluster | null = null
  try {
    const existing = new IdentityStore(store.lmdbRoot, async () => {}).read()
    if (existing?.clusterId) {
      throw new Error(`${data} already belongs to cluster ${existing.clusterName} (id ${existing.clusterId}) as host ${existing.hostId}; mount it instead`)
    }
    running = await startCluster(store, settings.cluster!, settings.fragments, 'init', say)
    await ModelFs.init(running.tables, {}, () => BigInt(Date.now()) * 1_000_000n)
    const id = running.node.identity
    return { clusterId: id.clusterId!, hostId: id.hostId }
  } finally {
    if (running) await running.close()
    else await store.close()
  }
}

export async function serveCluster (mountPoint: string, settings: MountSettings & { log: string }, daemon: boolean): Promise<number> {
  const c = settings.cluster!
  log(`starting: cluster ${c.host.cluster}, host ${c.host.id}, mount ${mountPoint}, data ${settings.data}, pid ${process.pid}`)
  let store: Store
  try {
    store = await waitForStore(() => Store.open(settings.data))
  } catch (e) {
    return fail(`cannot open the store in ${settings.data}: ${(e as Error).message}`, daemon)
  }
  let last = ''
  const say = (line: string): void => {
    log(line)
    if (line !== last) progressToParent(line)
    last = line
  }
  let running: RunningCluster
  try {
    running = await startCluster(store, c, settings.fragments, 'auto', say)
  } catch (e) {
    await store.close().catch(() => {})
    return fail(`cannot join cluster ${c.host.cluster}: ${(e as Error).message}`, daemon)
  }
  let fs: ModelFs
  try {
    const fsSettings = await ModelFs.init(running.tables, {}, () => BigInt(Date.now()) * 1_000_000n)
    fs = new ModelFs(running.tables, fsSettings, settings.data, undefined, { openElsewhere: openElsewhere(running.node) })
  } catch (e) {
    await running.close().catch(() => {})
    return fail(`the cluster filesystem is not usable: ${(e as Error).message}`, daemon)
  }
  const { node, router, store: st, local } = running
  const copies = (): number | null => node.catalog().tables.find((t) => t.name === FS_TABLE)?.copies ?? null
  // After a storage failure the host answers every request with that failure; a timer that asks must not end the daemon.
  const leading = (): number[] => node.raft.failure !== undefined ? [] : Array.from({ length: running.tables.fragments }, (_, f) => f)
    .filter((f) => node.hasGroup(`${FS_TABLE}/${f}`) && node.raft.status(`${FS_TABLE}/${f}`).role === 'leader')
  const stopSharedOpens = serveSharedOpens(node, fs, leading, log)
  const fragments = running.tables.fragments
  let kernelCache: KernelCache | undefined
  return await serveFuse(mountPoint, settings, daemon, fs, {
    kernelCache: (kernel) => {
      // a directory's names live in its own inode's fragment, as its attributes do (fragments.ts)
      kernelCache = new KernelCache({
        stamp: () => node.raft.cacheStamp(),
        until: (owner, stamp) => node.raft.cacheUntil(`${FS_TABLE}/${owner % fragments}`, stamp)
      }, kernel)
      node.raft.setCacheGate(kernelCache)
      return kernelCache
    },
    close: async () => {
      await stopSharedOpens()
      await running.close()
    },
    control: {
      status: () => {
        const v = clusterView(node.status(), new Set(router.leaderlessFragments().map((f) => `${FS_TABLE}/${f}`)), copies())
        // staleReads: reads served stale by this host since it started (the torture harness tells stale reads from lost writes with it)
        let staleReads = 0
        for (const n of router.staleReads().values()) staleReads += n
        return { mode: 'cluster', exitCode: exitCodeOf(v), cluster: v, staleReads, counters: { raft: node.raftStats(), tables: { unchangedChecks: router.unchangedChecks }, watch: { feedBytes: running.changes.feedBytes() }, fuse: { ...fuseCalls }, kernelCache: kernelCache?.stats ?? null } }
      },
      retire: async (args) => {
        if (typeof args.host !== 'string') throw new Error('retire needs a host id')
        await node.retire(args.host)
        return { retiring: args.host }
      },
      check: async () => await checkFs(running.tables),
      'check-replicas': async () => {
        const groups = node.catalog().groups.map((g) => g.id).filter((g) => g.startsWith(`${FS_TABLE}/`))
        return await checkReplicas(node, st, local, groups)
      },
      repair: async (args) => {
        if (typeof args.group !== 'string' || !args.group.startsWith(`${FS_TABLE}/`)) throw new Error('repair needs a fragment group (fs/<i>)')
        return await repairFragment(node, st, local, args.group, { dryRun: args.dryRun === true })
      }
    },
    streams: { watch: watchStream(running.tables, running.changes, 'cluster') }
  })
}
