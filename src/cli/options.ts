/**
 * Parses `key=value` host settings (as in a mount option string) into the
 * settings of the wire, discovery and membership. Pure. Promise: an
 * unknown key, a bad number or an impossible combination is refused with a
 * message naming it, before anything starts.
 */
import { checkTimings } from '../cluster/failure-detector.js'
import { DISCOVERY_DEFAULTS } from '../cluster/discovery.js'
import { parsePeerList } from '../cluster/static-peers.js'

export interface HostSettings {
  id: string
  cluster: string
  cookie: string
  port: number
  listen: string
  advertise: string[] | null
  encrypt: boolean
  mcast: boolean
  mcastGroup: string
  mcastPort: number
  mcastTtl: number
  mcastIfaces: string[]
  beaconMs: number
  peers: string[]
  peersCmd: string | undefined
  heartbeatMs: number
  linkTimeoutMs: number
  connectTimeoutMs: number
  suspectAfterMs: number
  downAfterMs: number
}

const KEYS = ['id', 'cluster', 'cookie', 'port', 'listen', 'advertise', 'encrypt', 'mcast', 'mcast_group', 'mcast_port',
  'mcast_ttl', 'mcast_iface', 'beacon_ms', 'peers', 'peers_cmd', 'heartbeat_ms', 'link_timeout_ms', 'connect_timeout_ms',
  'suspect_after_ms', 'down_after_ms']

function int (kv: Map<string, string>, key: string, dflt: number, min: number, max: number): number {
  const raw = kv.get(key)
  if (raw === undefined) return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${key}=${raw}: expected an integer in ${min}..${max}`)
  return n
}

function bool (kv: Map<string, string>, key: string, dflt: boolean): boolean {
  const raw = kv.get(key)
  if (raw === undefined) return dflt
  if (raw === 'on' || raw === 'true' || raw === '1') return true
  if (raw === 'off' || raw === 'false' || raw === '0') return false
  throw new Error(`${key}=${raw}: expected on or off`)
}

export function parseHostSettings (args: string[]): HostSettings {
  const kv = new Map<string, string>()
  for (const a of args.flatMap((x) => x.split(/,(?=[a-z_]+=)/))) {
    const i = a.indexOf('=')
    const key = i < 0 ? a : a.slice(0, i)
    if (!KEYS.includes(key)) throw new Error(`unknown setting ${JSON.stringify(key)}; known: ${KEYS.join(', ')}`)
    kv.set(key, i < 0 ? '' : a.slice(i + 1))
  }
  const id = kv.get('id')
  if (!id) throw new Error('id=NAME is required (a host name unique in the cluster)')
  const cookie = kv.get('cookie')
  if (!cookie) throw new Error('cookie=PATH is required (a file readable by its owner only)')
  const heartbeatMs = int(kv, 'heartbeat_ms', 1000, 10, 60_000)
  const s: HostSettings = {
    id,
    cluster: kv.get('cluster') ?? 'walkenfs',
    cookie,
    port: int(kv, 'port', 7400, 0, 65535),
    listen: kv.get('listen') ?? '0.0.0.0',
    advertise: kv.has('advertise') ? parsePeerList(kv.get('advertise')!.replace(/[;+]/g, ' ')) : null,
    encrypt: bool(kv, 'encrypt', true),
    mcast: bool(kv, 'mcast', true),
    mcastGroup: kv.get('mcast_group') ?? DISCOVERY_DEFAULTS.group,
    mcastPort: int(kv, 'mcast_port', DISCOVERY_DEFAULTS.port, 1, 65535),
    mcastTtl: int(kv, 'mcast_ttl', DISCOVERY_DEFAULTS.ttl, 0, 255),
    mcastIfaces: (kv.get('mcast_iface') ?? '').split(/[;+ ]/).filter((x) => x !== ''),
    beaconMs: int(kv, 'beacon_ms', DISCOVERY_DEFAULTS.intervalMs, 10, 600_000),
    peers: kv.has('peers') ? parsePeerList(kv.get('peers')!.replace(/[;+]/g, ' ')) : [],
    peersCmd: kv.get('peers_cmd'),
    heartbeatMs,
    linkTimeoutMs: int(kv, 'link_timeout_ms', 3 * heartbeatMs, 20, 600_000),
    connectTimeoutMs: int(kv, 'connect_timeout_ms', 2 * heartbeatMs, 10, 600_000),
    suspectAfterMs: int(kv, 'suspect_after_ms', 3 * heartbeatMs, 10, 600_000),
    downAfterMs: int(kv, 'down_after_ms', 6 * heartbeatMs, 20, 600_000),
  }
  for (const i of s.mcastIfaces) if (!/^\d+\.\d+\.\d+\.\d+$/.test(i)) throw new Error(`mcast_iface=${i} is not an IPv4 interface address`)
  if (!/^2(2[4-9]|3\d)\./.test(s.mcastGroup)) throw new Error(`mcast_group=${s.mcastGroup} is not an IPv4 multicast address`)
  checkTimings(s)
  if (s.suspectAfterMs >= s.downAfterMs) throw new Error(`suspect_after_ms (${s.suspectAfterMs}) must be below down_after_ms (${s.downAfterMs})`)
  return s
}
