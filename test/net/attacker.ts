/**
 * Hostile traffic for the netns tests, run inside an attacker namespace:
 * captures one real beacon of host `source` from the multicast group and
 * replays it to the group and to `victim`, sends random and oversized datagrams to the discovery port,
 * and opens TCP connections with garbage, truncated and oversized frames.
 * Prints {"done":…} with what it sent.
 * Usage: node attacker.js VICTIM_IP SOURCE_IP GROUP MCAST_PORT TCP_PORT
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { randomBytes } from 'node:crypto'

const [victim, source, group, mport, tport] = process.argv.slice(2) as [string, string, string, string, string]
const mcastPort = Number(mport)
const tcpPort = Number(tport)

async function captureBeacon (): Promise<Buffer> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise<void>((resolve) => s.bind(mcastPort, resolve))
  s.addMembership(group)
  return await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => { s.close(); reject(new Error('no beacon from the source within 10 s')) }, 10_000)
    s.on('message', (msg, rinfo) => {
      if (rinfo.address === source) { clearTimeout(timer); s.close(); resolve(msg) }
    })
  })
}

function tcp (payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect({ host: victim, port: tcpPort }, () => c.write(payload))
    c.on('error', () => resolve())
    c.on('close', () => resolve())
    setTimeout(() => { c.destroy(); resolve() }, 5000)
  })
}

const beacon = await captureBeacon()
const out = dgram.createSocket('udp4')
await new Promise<void>((resolve) => out.bind(0, resolve))
let sent = 0
// Paced, so that the victim's socket buffer (not its code) is never what drops a packet.
const send = async (b: Buffer, host: string): Promise<void> => {
  await new Promise<void>((resolve) => out.send(b, mcastPort, host, () => resolve()))
  if (++sent % 20 === 0) await new Promise((r) => setTimeout(r, 5))
}
const replays = 50
for (let i = 0; i < replays; i++) { await send(beacon, group); await send(beacon, victim) }
const garbage = 300
for (let i = 0; i < garbage; i++) await send(randomBytes(1 + (i * 7) % 1400), victim)
const tampered = Buffer.from(beacon); tampered[tampered.length - 1]! ^= 0xff
for (let i = 0; i < 20; i++) await send(tampered, victim)
for (let i = 0; i < 5; i++) await send(randomBytes(9000), victim)
out.close()

const header = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b }
const conns = [
  ...Array.from({ length: 20 }, () => randomBytes(4096)),
  Buffer.concat([header(500), randomBytes(20)]),
  header(0xfffffff0),
  Buffer.concat([header(5), Buffer.from([0x93, 1, 2, 3, 4])]),
]
await Promise.all(conns.map(tcp))
process.stdout.write(JSON.stringify({ done: true, replays, garbage, tampered: 20, oversized: 5, tcp: conns.length }) + '\n')
