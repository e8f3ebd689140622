/**
 * Wire benchmark: two processes on loopback, encryption on and off side by
 * side. Figures: RPC round trips/s with one call in flight and with 64,
 * latency p50/p99 of single calls, one-way small-message rate, bulk
 * throughput of 1 MiB messages, and the time to set up a link. Options: --quick (fewer iterations).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import net from 'node:net'
import { dialerHandshake } from '../src/wire/handshake.js'
import { deriveClusterKeys } from '../src/wire/keys.js'
import { Wire } from '../src/wire/wire.js'

const here = dirname(fileURLToPath(import.meta.url))

interface Row { rtt1: number, p50: number, p99: number, rtt64: number, oneway: number, bulk: number, setup: number }

async function measure (encrypt: boolean, quick: boolean): Promise<Row> {
  const cookie = randomBytes(32)
  const peer = spawn(process.execPath, [join(here, 'wire-peer.js'), cookie.toString('hex'), encrypt ? 'on' : 'off'], { stdio: ['pipe', 'pipe', 'inherit'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: peer.stdout! }).once('line', (l) => resolve(Number(l)))
      peer.once('exit', (c) => reject(new Error(`bench peer exited with ${c}`)))
    })
    const wire = new Wire({ hostId: 'bench', cookie, clusterName: 'bench', port: 0, listenHost: '127.0.0.1', encrypt,
      maxFrameBytes: 8 * 1024 * 1024, maxQueued: 1024, maxInflight: 1024, log: () => {} })
    await wire.start()
    wire.addPeer('bench-peer', [`127.0.0.1:${port}`])
    const small = { op: 'append', term: 3, index: 12345, data: randomBytes(100) }
    await wire.call('bench-peer', 'echo', small, { deadlineMs: 5000 })

    const n1 = quick ? 2000 : 10000
    const lat: number[] = []
    let t0 = process.hrtime.bigint()
    for (let i = 0; i < n1; i++) {
      const s = process.hrtime.bigint()
      await wire.call('bench-peer', 'echo', small, { deadlineMs: 5000 })
      lat.push(Number(process.hrtime.bigint() - s) / 1000)
    }
    const rtt1 = n1 / (Number(process.hrtime.bigint() - t0) / 1e9)
    lat.sort((a, b) => a - b)

    const n64 = quick ? 20000 : 100000
    t0 = process.hrtime.bigint()
    let next = 0
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next++ < n64) await wire.call('bench-peer', 'echo', small, { deadlineMs: 5000 })
    }))
    const rtt64 = n64 / (Number(process.hrtime.bigint() - t0) / 1e9)

    const nOne = quick ? 20000 : 100000
    const before = await wire.call('bench-peer', 'received', null, { deadlineMs: 5000 }) as number
    t0 = process.hrtime.bigint()
    const msg = randomBytes(100)
    for (let i = 0; i < nOne; i++) await wire.send('bench-peer', msg)
    await wire.call('bench-peer', 'received', null, { deadlineMs: 30000 }) // ordered after the sends
    const oneway = nOne / (Number(process.hrtime.bigint() - t0) / 1e9)

    const mib = quick ? 128 : 512
    const chunk = randomBytes(1024 * 1024)
    t0 = process.hrtime.bigint()
    for (let i = 0; i < mib; i++) await wire.send('bench-peer', chunk)
    const got = await wire.call('bench-peer', 'received', null, { deadlineMs: 60000 }) as number
    const bulk = mib / (Number(process.hrtime.bigint() - t0) / 1e9)
    if (got - before !== nOne * 100 + mib * 1024 * 1024) throw new Error(`bulk: peer received ${got - before} bytes, expected ${nOne * 100 + mib * 1024 * 1024}`)
    await wire.close()

    // Link setup: TCP connect + the whole handshake (both proofs, key exchange).
    const keys = deriveClusterKeys(cookie, 'bench')
    const setups: number[] = []
    for (let i = 0; i < (quick ? 100 : 500); i++) {
      const s = process.hrtime.bigint()
      const sock = net.connect({ host: '127.0.0.1', port })
      await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
      await dialerHandshake(sock, { hostId: `bench-${i}`, clusterHash: keys.clusterHash, authKey: keys.authKey, encrypt, addrs: [], timeoutMs: 5000 })
      setups.push(Number(process.hrtime.bigint() - s) / 1e6)
      sock.destroy()
    }
    setups.sort((a, b) => a - b)
    return { setup: setups[Math.floor(setups.length / 2)]!, rtt1, p50: lat[Math.floor(lat.length / 2)]!, p99: lat[Math.floor(lat.length * 0.99)]!, rtt64, oneway, bulk }
  } finally {
    peer.stdin!.end()
    peer.kill()
  }
}

export async function run (args: string[]): Promise<void> {
  const quick = args.includes('--quick')
  const on = await measure(true, quick)
  const off = await measure(false, quick)
  const f = (x: number, d = 0): string => x.toFixed(d).padStart(12)
  console.log('two processes on loopback, 100-byte payloads unless noted')
  console.log(`${'figure'.padEnd(34)}${'encrypted'.padStart(12)}${'plain'.padStart(12)}`)
  console.log(`${'RPC round trips/s, 1 in flight'.padEnd(34)}${f(on.rtt1)}${f(off.rtt1)}`)
  console.log(`${'RPC latency p50 (µs)'.padEnd(34)}${f(on.p50, 1)}${f(off.p50, 1)}`)
  console.log(`${'RPC latency p99 (µs)'.padEnd(34)}${f(on.p99, 1)}${f(off.p99, 1)}`)
  console.log(`${'RPC round trips/s, 64 in flight'.padEnd(34)}${f(on.rtt64)}${f(off.rtt64)}`)
  console.log(`${'one-way messages/s'.padEnd(34)}${f(on.oneway)}${f(off.oneway)}`)
  console.log(`${'bulk MiB/s (1 MiB messages)'.padEnd(34)}${f(on.bulk, 1)}${f(off.bulk, 1)}`)
  console.log(`${'link setup p50 (ms, TCP+handshake)'.padEnd(34)}${f(on.setup, 2)}${f(off.setup, 2)}`)
}
