/**
 * A wire endpoint in its own process for the slow-peer test: host id "2",
 * counts the one-way messages it receives and reports the count through the
 * `received` method. The test stops it with SIGSTOP to make a peer that
 * reads nothing. Prints its port. Usage: node sink-peer.js COOKIE_HEX
 */
import { Wire } from '../../src/wire/wire.js'

const [cookieHex] = process.argv.slice(2) as [string]
const wire = new Wire({ hostId: '2', cookie: Buffer.from(cookieHex, 'hex'), clusterName: 'raftwire', port: 0,
  listenHost: '127.0.0.1', heartbeatMs: 5000, linkTimeoutMs: 20000, log: () => {} })
let received = 0
wire.on('message', () => { received++ })
wire.handle('received', () => received)
await wire.start()
process.stdout.write(`${wire.port}\n`)
process.stdin.on('end', () => { void wire.close().then(() => process.exit(0)) })
process.stdin.resume()
