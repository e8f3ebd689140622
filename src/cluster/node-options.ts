/**
 * The settings of a ClusterNode as one plain object the CLI fills (from
 * mount options / command line), with the defaults and the checks that
 * refuse impossible values before anything starts.
 *
 * Owns: option names, meanings and defaults. Pure.
 */
import type { GroupStateMachine } from '../raft/host.js'
import type { Store } from '../store/store.js'
import { checkTimings } from './failure-detector.js'
import type { CatalogSettings } from './catalog.js'
import type { PlacementSettings } from './placement.js'

export interface ClusterNodeOptions {
  /** The host's store, opened by the caller (noSync: the node syncs every Raft cycle itself). */
  store: Store
  /** `host=`: this host's id; default the one stored in the data directory, else `defaultHostId`. */
  hostId?: string
  /** Used when neither `hostId` nor a stored id exists (the CLI passes os.hostname()). */
  defaultHostId: string
  /** `cluster=`: the cluster name; part of the wire handshake and of discovery. */
  clusterName: string
  /** The cookie file's bytes: only hosts with the same cookie and cluster name link up. */
  cookie: Buffer
  /** `init`: bootstrap at once as a one-host cluster (expect=1, no discovery wait). Default `auto`. */
  mode?: 'auto' | 'init'
  /** `expect=N`: empty hosts that must see each other before a new cluster forms (default 1). */
  expect?: number
  /**
   * An empty host waits this long (ms) for members to show up before it may
   * bootstrap, so that a host joining a running cluster whose links are not
   * up yet does not form a cluster of its own (default 3000; `init`: 0).
   */
  discoverMs?: number
  /** Catalog settings written at bootstrap (`copies`, `fragments`, `replaceAfterMs`, `quorumWaitMs`, `schemaVoters`). */
  settings?: Partial<CatalogSettings>
  /** The factory of state machines for every group except `schema` (e.g. `fs/3` → fragment machine). */
  machineFor: (groupId: string) => GroupStateMachine

  /** TCP listen address (default 0.0.0.0) and port (default 7400; 0 = any). */
  listenHost?: string
  port?: number
  /** "host:port" addresses peers should dial (`advertise=a+b`); default the listen address. */
  advertise?: string[]
  /** Encrypt links (default true). */
  encrypt?: boolean
  /** `peers=`: static "host:port" seeds. */
  peers?: string[]
  /** `peers_cmd=`: a command printing seeds, re-run every 30 s. */
  peersCmd?: string
  /** Multicast discovery; null/undefined = off. */
  mcast?: { group?: string, port?: number, ttl?: number, ifaces?: string[], intervalMs?: number } | null

  /** Wire heartbeat, link timeout and connect timeout (ms; defaults 1000 / 3000 / 2000). */
  heartbeatMs?: number
  linkTimeoutMs?: number
  connectTimeoutMs?: number
  /** Failure detector: suspect and down after this much silence (ms; defaults 3 / 6 heartbeats). */
  suspectAfterMs?: number
  downAfterMs?: number
  /** Raft: ms per tick (default 100), election timeout in ticks (10), heartbeat in ticks (2). */
  tickMs?: number
  electionTicks?: number
  heartbeatTicks?: number
  /** Compact a group's log after this many applied entries (default 10 000). */
  compactAfter?: number
  /** Period of the hello/bootstrap loop (ms, default 500). */
  helloMs?: number
  /** Period of the group lifecycle and, on the schema leader, of the placement actuator (ms, default 1000). */
  actuatorMs?: number
  /** Membership steps the actuator runs at once (default 4). */
  maxConcurrentMoves?: number
  /** Planner limits (maxMoves, maxMovesPerHost, maxPlan); replaceAfterMs and schemaVoters come from the catalog. */
  placement?: Partial<PlacementSettings>
  /**
   * A replica opened on request (a learner about to be added) is kept this
   * long (ms) even while the catalog does not list it yet (default 30 000).
   */
  replicaGraceMs?: number
  /** Deadline of the node's own control RPCs (ms, default 5000). */
  rpcDeadlineMs?: number
  /** Progress and trouble lines (default stderr). */
  log?: (line: string) => void
}

export type ResolvedOptions = Required<Omit<ClusterNodeOptions, 'hostId' | 'peersCmd' | 'mcast' | 'advertise' | 'settings' | 'placement'>> &
  Pick<ClusterNodeOptions, 'hostId' | 'peersCmd' | 'mcast' | 'advertise'> & { settings: Partial<CatalogSettings>, placement: Partial<PlacementSettings> }

export function resolveOptions (o: ClusterNodeOptions): ResolvedOptions {
  const heartbeatMs = o.heartbeatMs ?? 1000
  const init = o.mode === 'init'
  const r: ResolvedOptions = {
    mode: 'auto',
    expect: init ? 1 : 1,
    discoverMs: init ? 0 : 3000,
    listenHost: '0.0.0.0',
    port: 7400,
    encrypt: true,
    peers: [],
    heartbeatMs,
    linkTimeoutMs: 3 * heartbeatMs,
    connectTimeoutMs: 2 * heartbeatMs,
    suspectAfterMs: 3 * heartbeatMs,
    downAfterMs: 6 * heartbeatMs,
    tickMs: 100,
    electionTicks: 10,
    heartbeatTicks: 3,
    compactAfter: 10_000,
    helloMs: 500,
    actuatorMs: 1000,
    maxConcurrentMoves: 4,
    replicaGraceMs: 30_000,
    rpcDeadlineMs: 5000,
    log: (line) => { process.stderr.write(line + '\n') },
    ...o,
    settings: o.settings ?? {},
    placement: o.placement ?? {}
  }
  if (init) { r.expect = 1; r.discoverMs = 0 }
  if (!Number.isInteger(r.expect) || r.expect < 1) throw new Error(`expect=${String(r.expect)}: expected a whole number of hosts, at least 1`)
  if (r.mode !== 'auto' && r.mode !== 'init') throw new Error(`mode ${JSON.stringify(r.mode)}: expected auto or init`)
  for (const k of ['tickMs', 'electionTicks', 'heartbeatTicks', 'helloMs', 'actuatorMs', 'maxConcurrentMoves', 'rpcDeadlineMs'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new Error(`${k}=${String(r[k])}: expected a positive whole number`)
  }
  if (r.heartbeatTicks >= r.electionTicks) throw new Error(`heartbeatTicks (${r.heartbeatTicks}) must be below electionTicks (${r.electionTicks})`)
  checkTimings(r)
  if (r.suspectAfterMs >= r.downAfterMs) throw new Error(`suspectAfterMs (${r.suspectAfterMs}) must be below downAfterMs (${r.downAfterMs})`)
  return r
}
