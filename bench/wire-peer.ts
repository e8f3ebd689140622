/**
 * The far end for bench/wire.bench.ts, in its own process (so the two ends
 * do not share an event loop): a wire with an echo method, a sink for
 * one-way messages and a method reporting bytes received. Prints its port.
 * Usage: node wire-peer.js COOKIE_HEX on|off
 */
import { Wire } from '../src/wire/wire.js'

const [cookieHex, enc] = process.argv.slice(2) as [string, string]
const wire = new Wire({ hostId: 'bench-peer', cookie: Buffer.from(cookieHex, 'hex'), clusterName: 'bench', port: 0,
  listenHost: '127.0.0.1', encrypt: enc === 'on', maxFrameBytes: 8 * 1024 * 1024, maxQueued: 1024, maxInflight: 1024 })
let received = 0
wire.on('message', (_from: string, body: unknown) => { received += (body as Buffer).length })
wire.handle('echo', (p) => p)
wire.handle('received', () => received)
await wire.start()
process.stdout.write(`${wire.port}\n`)
process.stdin.on('end', () => { void wire.close().then(() => process.exit(0)) })
process.stdin.resume()
