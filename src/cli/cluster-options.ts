/**
 * The cluster part of a mount's `-o` options: which cluster to be part of,
 * how to reach the other hosts, and the settings a new cluster starts with.
 *
 * Promises: pure (no I/O; the cookie file is read later, by the daemon);
 * every value is checked here with a message that names the option and what
 * it accepts, so a bad fstab line fails before anything starts.
 *
 * Lists inside one option are joined by `+`, because commas separate mount
 * options: `listen=10.0.0.1:7400+10.1.0.1:7400`, `peers=a:7400+b:7400`.
 *
 * Decisions (the issue leaves them open):
 * - `expect` defaults to 3 (= the default `copies`): hosts started together
 *   wait until three empty hosts see each other. A one-host cluster is made
 *   on purpose with `walkenfs init` (or `expect=1`).
 * - a `peers` entry without a port gets the default port 7400.
 * - `listen` defaults to `0.0.0.0:7400`; with one concrete address the wire
 *   listens on it; with several it listens on all interfaces at the first
 *   address's port and advertises exactly the listed addresses.
 * - `copies`, `fragments`, `replace_after`, `quorum_wait` are the settings of
 *   a cluster this host creates; a host that joins takes the cluster's own.
 */
import { hostname } from 'node:os'
import { parseHostSettings, type HostSettings } from './options.js'

export const CLUSTER_OPTIONS = new Set(['cluster', 'cookie_file', 'listen', 'expect', 'peers', 'peers_cmd', 'copies',
  'replace_after', 'quorum_wait', 'host', 'mcast', 'mcast_iface', 'mcast_group', 'mcast_port', 'mcast_ttl', 'beacon_ms',
  'heartbeat_ms', 'schema_voters'])

export const DEFAULT_COOKIE_FILE = '/etc/walkenfs/cookie'
export const DEFAULT_PORT = 7400

export interface ClusterMountSettings {
  /** wire, discovery and failure-detection settings (src/cli/options.ts) */
  host: HostSettings
  /** empty hosts that must see each other before a new cluster forms */
  expect: number
  /** settings for a cluster this host bootstraps (null: the built-in default) */
  copies: number | null
  replaceAfterMs: number | null
  quorumWaitMs: number | null
  schemaVoters: number | null
}

export class ClusterOptionError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ClusterOptionError'
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }

/** "90", "90s", "10m", "1h", "500ms" → milliseconds (a bare number is seconds). */
export function parseDuration (name: string, value: string, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h|d)?$/.exec(value.trim())
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? 's']! : NaN
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs) {
    throw new ClusterOptionError(`option ${name}=${value}: expected a duration from ${minMs / 1000} s to ${maxMs / 1000} s, such as 30s, 10m or 1h (a bare number is seconds)`)
  }
  return Math.round(ms)
}

function whole (name: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new ClusterOptionError(`option ${name}=${value}: expected a whole number from ${min} to ${max}`)
  }
  return n
}

function splitList (value: string): string[] {
  return value.split('+').map((s) => s.trim()).filter((s) => s !== '')
}

/** host:port of one `listen` item; a bare address gets the default port. */
function listenItem (item: string): { host: string, port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(item)
  if (!m || m[1]!.split('.').some((o) => Number(o) > 255)) {
    throw new ClusterOptionError(`option listen: "${item}" is not an IPv4 address with an optional :port`)
  }
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2])
  if (port < 1 || port > 65535) throw new ClusterOptionError(`option listen: port ${port} in "${item}" is not in 1..65535`)
  return { host: m[1]!, port }
}

/**
 * Cluster settings from the cluster items of a mount (name → value, value
 * null for a flag). Returns null when there is no `cluster=` (one-host mode).
 */
export function parseClusterOptions (items: Map<string, string | null>): ClusterMountSettings | null {
  const get = (k: string): string | undefined => {
    if (!items.has(k)) return undefined
    const v = items.get(k)
    if (v === null || v === undefined || v === '') throw new ClusterOptionError(`option ${k}= needs a value`)
    return v
  }
  const cluster = get('cluster')
  if (cluster === undefined) {
    const stray = [...items.keys()]
    if (stray.length > 0) throw new ClusterOptionError(`option ${stray[0]} needs cluster=NAME (the cluster this host belongs to)`)
    return null
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(cluster)) {
    throw new ClusterOptionError(`option cluster=${cluster}: a name of letters, digits, '.', '_' and '-' (at most 64)`)
  }
  const host = get('host') ?? hostname()
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(host)) {
    throw new ClusterOptionError(`host id "${host}" is not usable: letters, digits, '.', '_' and '-' (at most 64); set host=NAME`)
  }
  const listen = splitList(get('listen') ?? `0.0.0.0:${DEFAULT_PORT}`).map(listenItem)
  if (listen.length === 0) throw new ClusterOptionError('option listen= needs at least one address')
  const wildcard = listen.some((l) => l.host === '0.0.0.0')
  if (wildcard && listen.length > 1) throw new ClusterOptionError('option listen: 0.0.0.0 (all interfaces) cannot be combined with other addresses')
  const hostArgs = [
    `id=${host}`, `cluster=${cluster}`, `cookie=${get('cookie_file') ?? DEFAULT_COOKIE_FILE}`,
    `port=${listen[0]!.port}`, `listen=${listen.length === 1 ? listen[0]!.host : '0.0.0.0'}`
  ]
  if (!wildcard) hostArgs.push(`advertise=${listen.map((l) => `${l.host}:${l.port}`).join('+')}`)
  const peers = get('peers')
  if (peers !== undefined) hostArgs.push(`peers=${splitList(peers).map((p) => p.includes(':') ? p : `${p}:${DEFAULT_PORT}`).join('+')}`)
  for (const k of ['peers_cmd', 'mcast', 'mcast_iface', 'mcast_group', 'mcast_port', 'mcast_ttl', 'beacon_ms', 'heartbeat_ms']) {
    const v = get(k)
    if (v !== undefined) hostArgs.push(`${k}=${v}`)
  }
  let hostSettings: HostSettings
  try {
    hostSettings = parseHostSettings(hostArgs)
  } catch (e) {
    throw new ClusterOptionError(`cluster options: ${(e as Error).message}`)
  }
  const num = (k: string, min: number, max: number): number | null => {
    const v = get(k)
    return v === undefined ? null : whole(k, v, min, max)
  }
  const dur = (k: string, min: number, max: number): number | null => {
    const v = get(k)
    return v === undefined ? null : parseDuration(k, v, min, max)
  }
  return {
    host: hostSettings,
    expect: num('expect', 1, 1000) ?? 3,
    copies: num('copies', 1, 9),
    replaceAfterMs: dur('replace_after', 1000, 365 * 86_400_000),
    quorumWaitMs: dur('quorum_wait', 100, 3_600_000),
    schemaVoters: num('schema_voters', 1, 9)
  }
}
