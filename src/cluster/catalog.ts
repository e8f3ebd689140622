/**
 * The cluster catalog: the state of the schema Raft group (cluster id and
 * name, settings, hosts and their addresses, tables, and the replicas of
 * every Raft group), the commands that change it, and the mapping from the
 * catalog to the placement planner's input.
 *
 * Owns: the catalog data model, command validation and application.
 *
 * Promises:
 * - pure and deterministic: no I/O, no clock, no randomness; times and ids
 *   arrive inside commands. The same commands applied to the same state give
 *   the same state, byte for byte once encoded (every list is kept sorted and
 *   every object is built with one fixed key order);
 * - a rejected command changes nothing and its error is the apply result, so
 *   every replica rejects it the same way;
 * - the state is plain data (strings, numbers, arrays, null), so msgpack
 *   encodes it and `decodeCatalog(encodeCatalog(c))` equals `c`.
 */
import { pack, unpack } from 'msgpackr'
import { SCHEMA_GROUP, fragmentId, type GroupState, type HostInfo, type PlacementInput } from './placement.js'

export interface CatalogSettings {
  /** Replicas per fragment for tables that do not say. */
  copies: number
  /** Fragments per table for tables that do not say. */
  fragments: number
  /** How long a host may be down before its replicas are replaced (ms). */
  replaceAfterMs: number
  /** How long a write waits for a quorum before failing (ms). */
  quorumWaitMs: number
  /** Most voters the schema group has; the other hosts follow it as learners. */
  schemaVoters: number
}

export const defaultCatalogSettings: CatalogSettings = {
  copies: 3,
  fragments: 16,
  replaceAfterMs: 10 * 60 * 1000,
  quorumWaitMs: 10 * 1000,
  schemaVoters: 5
}

export type HostState = 'up' | 'retiring' | 'retired'

export interface CatalogHost {
  id: string
  /** The host's Raft node number, assigned once by the catalog and never reused. */
  node: number
  addresses: string[]
  state: HostState
  /** When the catalog admitted it (ms, from the command). */
  joinedAt: number
}

export interface CatalogTable {
  name: string
  copies: number
  fragments: number
}

export interface CatalogReplica {
  host: string
  role: 'voter' | 'learner'
}

export interface CatalogGroup {
  id: string
  /** Sorted by host id. */
  replicas: CatalogReplica[]
  /** Raft log index of the membership change that produced `replicas`. */
  configIndex: number
  /** Last known leader's host id (a hint: it may be stale). */
  leader: string | null
}

export interface Catalog {
  /** Null until the bootstrap command is applied. */
  clusterId: string | null
  name: string
  settings: CatalogSettings
  /** Sorted by id. */
  hosts: CatalogHost[]
  /** Sorted by name. */
  tables: CatalogTable[]
  /** Sorted by id. */
  groups: CatalogGroup[]
  /** Next Raft node number to hand out. */
  nextNode: number
  /** Set by a forced recovery (`walkenfs recover --force-new-cluster`); absent before the first one. */
  recovery?: CatalogRecovery
}

/** The last forced recovery: hosts holding data of an earlier cluster id are refused with this. */
export interface CatalogRecovery {
  /** The host the recovery ran on. */
  host: string
  /** When (ms, from the command). */
  at: number
  /** Cluster ids before this one, oldest first (at most MAX_RECOVERIES). */
  previousIds: string[]
}

export interface NewHost { id: string, addresses: string[] }

export type CatalogCommand =
  | { op: 'bootstrap', clusterId: string, name: string, host: NewHost, at: number, settings?: Partial<CatalogSettings> }
  | { op: 'addHost', host: NewHost, at: number }
  | { op: 'updateAddresses', host: string, addresses: string[] }
  | { op: 'startRetire', host: string }
  | { op: 'finishRetire', host: string }
  | { op: 'createTable', name: string, copies?: number, fragments?: number }
  | { op: 'recordMembership', group: string, replicas: CatalogReplica[], configIndex: number }
  | { op: 'leaderHint', group: string, leader: string | null }
  | { op: 'changeSettings', settings: Partial<CatalogSettings> }
  /**
   * The forced recovery on `host`: the cluster gets id `clusterId`, every
   * other host is dropped (it must join again, empty), and every group is
   * placed on `host` alone, at the config index given (a group not listed:
   * index 1, i.e. founded empty on `host`).
   */
  | { op: 'forceRecover', clusterId: string, host: string, at: number, configIndexes: Record<string, number> }

export type ApplyResult = { ok: true } | { ok: false, error: string }

const SETTING_LIMITS: Record<keyof CatalogSettings, [number, number]> = {
  copies: [1, 9],
  fragments: [1, 4096],
  replaceAfterMs: [0, 365 * 24 * 3600 * 1000],
  quorumWaitMs: [0, 24 * 3600 * 1000],
  schemaVoters: [1, 9]
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const TABLE_RE = /^[a-z][a-z0-9_-]{0,63}$/
/** Bounds so one command cannot grow a replica's state without limit. */
const MAX_ADDRESSES = 16
const MAX_ADDRESS_LEN = 256
const MAX_HOSTS = 4096
const MAX_TABLES = 1024
/** Previous cluster ids remembered by the catalog (each forced recovery adds one). */
export const MAX_RECOVERIES = 16

export function emptyCatalog (): Catalog {
  return { clusterId: null, name: '', settings: { ...defaultCatalogSettings }, hosts: [], tables: [], groups: [], nextNode: 1 }
}

/** Checks a partial settings object; returns the error, or undefined when every given value is allowed. */
export function checkSettings (s: Partial<CatalogSettings>): string | undefined {
  if (typeof s !== 'object' || s === null) return 'settings must be an object'
  for (const [k, v] of Object.entries(s)) {
    if (!(k in SETTING_LIMITS)) return `unknown setting "${k}" (known: ${Object.keys(SETTING_LIMITS).join(', ')})`
    const [lo, hi] = SETTING_LIMITS[k as keyof CatalogSettings]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) return `setting ${k}=${String(v)} must be an integer from ${lo} to ${hi}`
  }
  return undefined
}

function mergeSettings (base: CatalogSettings, s: Partial<CatalogSettings>): CatalogSettings {
  // Fixed key order keeps the encoding deterministic whatever order the command used.
  return {
    copies: s.copies ?? base.copies,
    fragments: s.fragments ?? base.fragments,
    replaceAfterMs: s.replaceAfterMs ?? base.replaceAfterMs,
    quorumWaitMs: s.quorumWaitMs ?? base.quorumWaitMs,
    schemaVoters: s.schemaVoters ?? base.schemaVoters
  }
}

function checkAddresses (addresses: unknown): string | undefined {
  if (!Array.isArray(addresses) || addresses.length === 0) return 'a host needs at least one address'
  if (addresses.length > MAX_ADDRESSES) return `a host may have at most ${MAX_ADDRESSES} addresses, got ${addresses.length}`
  for (const a of addresses) {
    if (typeof a !== 'string' || a.length === 0 || a.length > MAX_ADDRESS_LEN) return `address ${JSON.stringify(a)} must be a non-empty string of at most ${MAX_ADDRESS_LEN} characters`
  }
  if (new Set(addresses).size !== addresses.length) return 'addresses must not repeat'
  return undefined
}

function checkNewHost (c: Catalog, h: NewHost | undefined, at: unknown): string | undefined {
  if (typeof h !== 'object' || h === null) return 'host must be given'
  if (typeof h.id !== 'string' || !ID_RE.test(h.id)) return `host id ${JSON.stringify(h.id)} must be 1-64 letters, digits, '.', '_' or '-'`
  if (typeof at !== 'number' || !Number.isFinite(at)) return 'the admission time "at" must be a number'
  const known = findHost(c, h.id)
  if (known) return `host ${h.id} is already in the catalog (${known.state})`
  if (c.hosts.length >= MAX_HOSTS) return `the catalog holds at most ${MAX_HOSTS} hosts`
  return checkAddresses(h.addresses)
}

export function findHost (c: Catalog, id: string): CatalogHost | undefined {
  return c.hosts.find((h) => h.id === id)
}

export function findGroup (c: Catalog, id: string): CatalogGroup | undefined {
  return c.groups.find((g) => g.id === id)
}

function byKey<T> (key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0
}

function admit (c: Catalog, h: NewHost, at: number): void {
  c.hosts.push({ id: h.id, node: c.nextNode, addresses: [...h.addresses], state: 'up', joinedAt: at })
  c.hosts.sort(byKey((x) => x.id))
  c.nextNode++
}

/** The groups a table owns plus the schema group: the only group ids the catalog records. */
function groupWanted (c: Catalog, id: string): boolean {
  if (id === SCHEMA_GROUP) return true
  const slash = id.lastIndexOf('/')
  if (slash < 0) return false
  const table = c.tables.find((t) => t.name === id.slice(0, slash))
  const idx = id.slice(slash + 1)
  return table !== undefined && /^(0|[1-9][0-9]*)$/.test(idx) && Number(idx) < table.fragments
}

/** Validates a command against the state; returns its error or undefined. Reads only. */
function check (c: Catalog, cmd: CatalogCommand): string | undefined {
  if (typeof cmd !== 'object' || cmd === null || typeof (cmd as { op?: unknown }).op !== 'string') return 'a catalog command must be an object with an "op"'
  if (cmd.op === 'bootstrap') {
    if (c.clusterId !== null) return `the cluster is already bootstrapped (cluster id ${c.clusterId})`
    if (typeof cmd.clusterId !== 'string' || !ID_RE.test(cmd.clusterId)) return `cluster id ${JSON.stringify(cmd.clusterId)} must be 1-64 letters, digits, '.', '_' or '-'`
    if (typeof cmd.name !== 'string' || !ID_RE.test(cmd.name)) return `cluster name ${JSON.stringify(cmd.name)} must be 1-64 letters, digits, '.', '_' or '-'`
    if (cmd.settings !== undefined) { const e = checkSettings(cmd.settings); if (e) return e }
    return checkNewHost(c, cmd.host, cmd.at)
  }
  if (c.clusterId === null) return `the cluster is not bootstrapped yet; "${cmd.op}" needs a bootstrapped catalog`
  switch (cmd.op) {
    case 'addHost':
      return checkNewHost(c, cmd.host, cmd.at)
    case 'updateAddresses': {
      const h = findHost(c, cmd.host)
      if (!h) return `unknown host ${JSON.stringify(cmd.host)}`
      if (h.state === 'retired') return `host ${h.id} is retired; it cannot change its addresses`
      return checkAddresses(cmd.addresses)
    }
    case 'startRetire': {
      const h = findHost(c, cmd.host)
      if (!h) return `unknown host ${JSON.stringify(cmd.host)}`
      if (h.state !== 'up') return `host ${h.id} is already ${h.state}`
      const left = c.hosts.filter((x) => x.state === 'up' && x.id !== h.id).length
      if (left === 0) return `host ${h.id} is the last host that is not retiring; retiring it would leave no host to hold the data`
      return undefined
    }
    case 'finishRetire': {
      const h = findHost(c, cmd.host)
      if (!h) return `unknown host ${JSON.stringify(cmd.host)}`
      if (h.state !== 'retiring') return `host ${h.id} is ${h.state}; only a retiring host can finish retiring (start with startRetire)`
      const holding = c.groups.filter((g) => g.replicas.some((r) => r.host === h.id)).map((g) => g.id)
      if (holding.length > 0) return `host ${h.id} still holds replicas of ${holding.length} group(s) (${holding.slice(0, 5).join(', ')}${holding.length > 5 ? ', …' : ''}); drain them first`
      return undefined
    }
    case 'createTable': {
      if (typeof cmd.name !== 'string' || !TABLE_RE.test(cmd.name)) return `table name ${JSON.stringify(cmd.name)} must start with a lower-case letter and have at most 64 lower-case letters, digits, '_' or '-'`
      if (c.tables.some((t) => t.name === cmd.name)) return `table ${cmd.name} already exists`
      if (c.tables.length >= MAX_TABLES) return `the catalog holds at most ${MAX_TABLES} tables`
      const s: Partial<CatalogSettings> = {}
      if (cmd.copies !== undefined) s.copies = cmd.copies
      if (cmd.fragments !== undefined) s.fragments = cmd.fragments
      return checkSettings(s)
    }
    case 'recordMembership': {
      if (typeof cmd.group !== 'string' || !groupWanted(c, cmd.group)) return `group ${JSON.stringify(cmd.group)} is neither the schema group nor a fragment of a known table`
      if (typeof cmd.configIndex !== 'number' || !Number.isInteger(cmd.configIndex) || cmd.configIndex < 1) return `config index ${String(cmd.configIndex)} must be a positive integer`
      const g = findGroup(c, cmd.group)
      if (g && cmd.configIndex <= g.configIndex) return `stale membership for ${cmd.group}: config index ${cmd.configIndex} is not newer than the recorded ${g.configIndex}`
      if (!Array.isArray(cmd.replicas)) return 'replicas must be a list'
      const seen = new Set<string>()
      for (const r of cmd.replicas) {
        if (typeof r !== 'object' || r === null || (r.role !== 'voter' && r.role !== 'learner')) return `replica ${JSON.stringify(r)} must have a host and the role voter or learner`
        const h = findHost(c, r.host)
        if (!h) return `replica on unknown host ${JSON.stringify(r.host)} in group ${cmd.group}`
        if (h.state === 'retired') return `replica on retired host ${h.id} in group ${cmd.group}`
        if (seen.has(r.host)) return `host ${r.host} appears twice in group ${cmd.group}`
        seen.add(r.host)
      }
      // A group with replicas but no voter could never commit anything; an empty list drops the group.
      if (cmd.replicas.length > 0 && !cmd.replicas.some((r) => r.role === 'voter')) return `group ${cmd.group} would have no voter`
      return undefined
    }
    case 'leaderHint': {
      const g = findGroup(c, cmd.group)
      if (!g) return `unknown group ${JSON.stringify(cmd.group)}`
      if (cmd.leader !== null && !g.replicas.some((r) => r.host === cmd.leader && r.role === 'voter')) return `host ${JSON.stringify(cmd.leader)} is not a voter of group ${g.id}, so it cannot lead it`
      return undefined
    }
    case 'changeSettings':
      return checkSettings(cmd.settings)
    case 'forceRecover': {
      if (typeof cmd.clusterId !== 'string' || !ID_RE.test(cmd.clusterId)) return `cluster id ${JSON.stringify(cmd.clusterId)} must be 1-64 letters, digits, '.', '_' or '-'`
      if (cmd.clusterId === c.clusterId || c.recovery?.previousIds.includes(cmd.clusterId) === true) return `cluster id ${cmd.clusterId} was already used by this cluster; a recovery needs a new one`
      const h = findHost(c, cmd.host)
      if (!h || h.state === 'retired') return `host ${JSON.stringify(cmd.host)} is not an active host of this catalog; it cannot take over the cluster`
      if (typeof cmd.at !== 'number' || !Number.isFinite(cmd.at)) return 'the recovery time "at" must be a number'
      if (typeof cmd.configIndexes !== 'object' || cmd.configIndexes === null) return 'configIndexes must be an object'
      for (const [g, i] of Object.entries(cmd.configIndexes)) {
        if (typeof i !== 'number' || !Number.isInteger(i) || i < 1) return `config index ${String(i)} of ${g} must be a positive integer`
      }
      return undefined
    }
    default:
      return `unknown catalog command "${(cmd as { op: string }).op}"`
  }
}

/**
 * Applies one command to `c` in place. Rejected commands leave `c`
 * untouched: every check runs before the first change.
 */
export function applyCommand (c: Catalog, cmd: CatalogCommand): ApplyResult {
  const error = check(c, cmd)
  if (error !== undefined) return { ok: false, error }
  switch (cmd.op) {
    case 'bootstrap':
      c.clusterId = cmd.clusterId
      c.name = cmd.name
      c.settings = mergeSettings(c.settings, cmd.settings ?? {})
      admit(c, cmd.host, cmd.at)
      break
    case 'addHost':
      admit(c, cmd.host, cmd.at)
      break
    case 'updateAddresses':
      findHost(c, cmd.host)!.addresses = [...cmd.addresses]
      break
    case 'startRetire':
      findHost(c, cmd.host)!.state = 'retiring'
      break
    case 'finishRetire':
      findHost(c, cmd.host)!.state = 'retired'
      break
    case 'createTable':
      c.tables.push({ name: cmd.name, copies: cmd.copies ?? c.settings.copies, fragments: cmd.fragments ?? c.settings.fragments })
      c.tables.sort(byKey((t) => t.name))
      break
    case 'recordMembership': {
      const replicas = cmd.replicas.map((r) => ({ host: r.host, role: r.role })).sort(byKey((r) => r.host))
      const old = findGroup(c, cmd.group)
      c.groups = c.groups.filter((g) => g.id !== cmd.group)
      if (replicas.length > 0) {
        // The old leader hint survives only if that host is still a voter.
        const leader = old?.leader != null && replicas.some((r) => r.host === old.leader && r.role === 'voter') ? old.leader : null
        c.groups.push({ id: cmd.group, replicas, configIndex: cmd.configIndex, leader })
        c.groups.sort(byKey((g) => g.id))
      }
      break
    }
    case 'leaderHint':
      findGroup(c, cmd.group)!.leader = cmd.leader
      break
    case 'changeSettings':
      c.settings = mergeSettings(c.settings, cmd.settings)
      break
    case 'forceRecover': {
      const me = findHost(c, cmd.host)!
      const previousIds = [...(c.recovery?.previousIds ?? []), ...(c.clusterId !== null ? [c.clusterId] : [])].slice(-MAX_RECOVERIES)
      // Dropped, not retired: a lost host may join again under its old id once its data directory is empty.
      c.hosts = [{ ...me, state: 'up' }]
      c.groups = c.groups.map((g) => ({ id: g.id, replicas: [{ host: me.id, role: 'voter' as const }], configIndex: cmd.configIndexes[g.id] ?? 1, leader: me.id }))
      c.clusterId = cmd.clusterId
      c.recovery = { host: me.id, at: cmd.at, previousIds }
      break
    }
  }
  return { ok: true }
}

export function encodeCatalog (c: Catalog): Uint8Array {
  return pack(c)
}

export function decodeCatalog (data: Uint8Array): Catalog {
  const c = unpack(data) as Catalog
  if (typeof c !== 'object' || c === null || !Array.isArray(c.hosts) || !Array.isArray(c.tables) || !Array.isArray(c.groups) || typeof c.settings !== 'object') {
    throw new Error('catalog snapshot is damaged: it does not decode to a catalog')
  }
  return c
}

export function encodeCommand (cmd: CatalogCommand): Uint8Array {
  return pack(cmd)
}

/** Liveness of one host as the failure detector sees it. */
export interface HostLiveness {
  up: boolean
  /** When it was first seen down (ms, same clock as `now`). */
  downSince?: number
  zone?: string
}

export interface Liveness {
  now: number
  hosts: Record<string, HostLiveness>
  /** Learners, by group, whose log has reached the group's commit index. */
  caughtUp?: Record<string, string[]>
  /** Groups with a membership change proposed but not yet committed. */
  changing?: string[]
  /** Current leaders by group, when fresher than the catalog's hints. */
  leaders?: Record<string, string | null>
}

/**
 * The placement planner's input for this catalog. Retired hosts are left
 * out; a host missing from `liveness` counts as down since `now`, so it is
 * not replaced before `replaceAfterMs` has passed from the time it is first
 * reported.
 */
export function toPlacementInput (c: Catalog, liveness: Liveness): PlacementInput {
  const hosts: HostInfo[] = []
  for (const h of c.hosts) {
    if (h.state === 'retired') continue
    const l = liveness.hosts[h.id]
    const info: HostInfo = { id: h.id, state: l?.up === true ? 'up' : 'down' }
    if (info.state === 'down') info.downSince = l?.downSince ?? liveness.now
    if (h.state === 'retiring') info.retiring = true
    if (l?.zone !== undefined) info.zone = l.zone
    hosts.push(info)
  }
  const changing = new Set(liveness.changing ?? [])
  const groups: GroupState[] = c.groups.map((g) => {
    const caught = new Set(liveness.caughtUp?.[g.id] ?? [])
    const leader = liveness.leaders !== undefined && g.id in liveness.leaders ? liveness.leaders[g.id] : g.leader
    const state: GroupState = {
      id: g.id,
      replicas: g.replicas.map((r) => r.role === 'learner' ? { host: r.host, role: r.role, caughtUp: caught.has(r.host) } : { host: r.host, role: r.role }),
      leader: leader ?? null
    }
    if (changing.has(g.id)) state.changing = true
    return state
  })
  return {
    now: liveness.now,
    hosts,
    tables: c.tables.map((t) => ({ name: t.name, copies: t.copies, fragments: t.fragments })),
    groups,
    settings: { replaceAfterMs: c.settings.replaceAfterMs, schemaVoters: c.settings.schemaVoters }
  }
}

/** The fragment group ids of a table, in order. */
export function tableGroups (t: CatalogTable): string[] {
  return Array.from({ length: t.fragments }, (_, i) => fragmentId(t.name, i))
}
