/**
 * `netnode`: a host process running the wire, discovery and membership and
 * nothing else, for the multi-host tests and for trying the network layer
 * by hand:
 *
 *   node dist/src/cli/netnode.js id=a cookie=/etc/walkenfs/cookie peers=10.0.0.2:7400 …
 *
 * It prints one JSON object per line on stdout: {"ev":"ready"}, {"ev":"up",
 * "peer"}, {"ev":"down","peer"}, and answers commands read from stdin, one
 * per line: `view` (membership, links, counters), `call PEER` (an RPC
 * round trip), `quit`. Log lines go to stderr. Settings: src/cli/options.ts.
 */
import { networkInterfaces } from 'node:os'
import { createInterface } from 'node:readline'
import { Discovery } from '../cluster/discovery.js'
import { Membership } from '../cluster/membership.js'
import { StaticPeers } from '../cluster/static-peers.js'
import { readCookieFile } from '../wire/cookie.js'
import { Wire } from '../wire/wire.js'
import { parseHostSettings } from './options.js'

function out (obj: unknown): void { process.stdout.write(JSON.stringify(obj) + '\n') }
const log = (line: string): void => { process.stderr.write(line + '\n') }

function localAddresses (port: number): string[] {
  return Object.values(networkInterfaces()).flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => `${a!.address}:${port}`)
}

async function main (): Promise<void> {
  let s
  let cookie
  try {
    s = parseHostSettings(process.argv.slice(2))
    cookie = readCookieFile(s.cookie)
  } catch (err) {
    log(`netnode: ${(err as Error).message}`)
    process.exit(2)
  }
  const wire = new Wire({
    hostId: s.id, cookie, clusterName: s.cluster, port: s.port, listenHost: s.listen, encrypt: s.encrypt,
    heartbeatMs: s.heartbeatMs, linkTimeoutMs: s.linkTimeoutMs, connectTimeoutMs: s.connectTimeoutMs,
    handshakeTimeoutMs: s.connectTimeoutMs, backoff: { baseMs: Math.max(20, s.heartbeatMs / 10), maxMs: 2 * s.heartbeatMs },
    advertise: s.advertise ?? undefined, log,
  })
  await wire.start()
  if (!s.advertise) {
    const addrs = localAddresses(wire.port)
    if (addrs.length > 0) wire.setAddresses(addrs)
  }
  wire.handle('netnode.whoami', () => s.id)
  const membership = new Membership(wire, { suspectAfterMs: s.suspectAfterMs, downAfterMs: s.downAfterMs })
  membership.on('up', (peer: string) => out({ ev: 'up', peer }))
  membership.on('down', (peer: string) => out({ ev: 'down', peer }))

  let discovery: Discovery | null = null
  if (s.mcast) {
    discovery = new Discovery({ hostId: s.id, incarnation: Date.now(), keys: wire.keys, addrs: () => wire.addresses,
      group: s.mcastGroup, port: s.mcastPort, ttl: s.mcastTtl, ifaces: s.mcastIfaces, intervalMs: s.beaconMs, log })
    discovery.on('peer', (b: { hostId: string, addrs: string[] }) => wire.addPeer(b.hostId, b.addrs))
    await discovery.start()
  }
  const statics = new StaticPeers({ peers: s.peers, cmd: s.peersCmd, add: (a) => wire.addSeed(a), log })
  statics.start()

  const stop = async (): Promise<void> => {
    statics.stop()
    membership.stop()
    await discovery?.stop()
    await wire.close()
    process.exit(0)
  }
  process.on('SIGTERM', () => { void stop() })
  process.on('SIGINT', () => { void stop() })

  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/)
    if (cmd === 'view') {
      out({ ev: 'view', id: s.id, up: membership.up(), members: membership.view(), links: wire.peerTable(),
        addresses: wire.addresses, wire: wire.counters.snapshot(), discovery: discovery?.counters.snapshot() ?? null,
        heapUsed: process.memoryUsage().heapUsed })
    } else if (cmd === 'call' && arg) {
      wire.call(arg, 'netnode.whoami', null, { deadlineMs: 2000 }).then(
        (r) => out({ ev: 'call', peer: arg, ok: true, result: r }),
        (e: Error) => out({ ev: 'call', peer: arg, ok: false, error: e.message }))
    } else if (cmd === 'quit') void stop()
    else if (cmd) log(`netnode: unknown command ${JSON.stringify(line)}; known: view, call PEER, quit`)
  })
  out({ ev: 'ready', id: s.id, port: wire.port, addresses: wire.addresses })
}

void main().catch((err: Error) => { log(`netnode: ${err.message}`); process.exit(1) })
