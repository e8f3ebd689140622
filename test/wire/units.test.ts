import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { backoffDelay } from '../../src/wire/backoff.js'
import { FrameOpener, FrameSealer } from '../../src/wire/cipher.js'
import { readCookieFile } from '../../src/wire/cookie.js'
import { FrameDecoder, frameHeader } from '../../src/wire/framing.js'
import { deriveClusterKeys, randomBytes } from '../../src/wire/keys.js'
import { decodeMessage, encodeMessage, Kind, WIRE_VERSION } from '../../src/wire/messages.js'

t.test('frame decoder: frames split anywhere come out whole', async (t) => {
  const frames = [Buffer.from('a'), randomBytes(5000), Buffer.from('xyz')]
  const stream = Buffer.concat(frames.flatMap((f) => [frameHeader(f.length), f]))
  for (const step of [1, 3, 7, 4096, stream.length]) {
    const d = new FrameDecoder(10_000)
    const out: Buffer[] = []
    for (let i = 0; i < stream.length; i += step) out.push(...d.push(stream.subarray(i, i + step)))
    t.same(out, frames, `chunks of ${step}`)
    t.equal(d.pendingBytes, 0)
  }
})

t.test('frame decoder: an oversized length is refused before its bytes are buffered', async (t) => {
  const d = new FrameDecoder(100)
  t.throws(() => d.push(frameHeader(101)), { code: 'EPROTO', message: /exceeds the limit of 100/ })
  t.throws(() => new FrameDecoder(100).push(frameHeader(0)), { code: 'EPROTO' })
  const partial = new FrameDecoder(100)
  t.same(partial.push(Buffer.concat([frameHeader(100), Buffer.alloc(50)])), [])
  t.equal(partial.pendingBytes, 50, 'holds no more than the partial frame')
})

t.test('cipher: round trip; tampering, replay and the wrong key fail', async (t) => {
  const k = randomBytes(32)
  const s = new FrameSealer(k)
  const o = new FrameOpener(k)
  const f1 = s.seal(Buffer.from('one'))
  const f2 = s.seal(Buffer.from('two'))
  t.equal(o.open(f1.subarray(4)).toString(), 'one')
  t.throws(() => o.open(f1.subarray(4)), { code: 'EPROTO' }, 'replay of frame 1')
  const o2 = new FrameOpener(k)
  o2.open(f1.subarray(4))
  const bad = Buffer.from(f2.subarray(4)); bad[0]! ^= 1
  t.throws(() => o2.open(bad), { code: 'EPROTO' }, 'flipped bit')
  t.throws(() => new FrameOpener(randomBytes(32)).open(f1.subarray(4)), { code: 'EPROTO' }, 'wrong key')
})

t.test('messages: every kind round-trips; other versions and shapes are refused', async (t) => {
  const ms = [
    { kind: Kind.Send, body: { a: [1, 'x', null], b: Buffer.from([1, 2]) } },
    { kind: Kind.Request, id: 7, method: 'm', payload: 3, deadlineMs: 100 },
    { kind: Kind.Response, id: 7, ok: false, payload: { code: 'EREMOTE', message: 'x' } },
    { kind: Kind.Cancel, id: 9 },
    { kind: Kind.Ping, stamp: 12345 },
  ] as const
  for (const m of ms) t.same(decodeMessage(encodeMessage(m)), m)
  t.throws(() => decodeMessage(Buffer.from([0x93, WIRE_VERSION + 1, 0, 0])), { code: 'EPROTO', message: new RegExp(`version ${WIRE_VERSION + 1}`) })
  t.throws(() => decodeMessage(Buffer.from([0x93, 1, 0, 0])), { code: 'EPROTO', message: /version 1/ }, 'a host of the release before is refused')
  t.throws(() => decodeMessage(Buffer.from([0x93, WIRE_VERSION, 1, 0])), { code: 'EPROTO', message: /malformed/ })
  t.throws(() => decodeMessage(Buffer.from([0xc1])), { code: 'EPROTO' })
})

t.test('backoff grows, is capped and jittered', async (t) => {
  const s = { baseMs: 100, maxMs: 5000 }
  t.equal(backoffDelay(0, s, () => 0), 50)
  t.equal(backoffDelay(0, s, () => 1), 100)
  t.equal(backoffDelay(3, s, () => 1), 800)
  t.equal(backoffDelay(50, s, () => 1), 5000)
  t.equal(backoffDelay(50, s, () => 0), 2500)
})

t.test('keys: separated by use, by cookie and by cluster name', async (t) => {
  const c = Buffer.from('cookie-cookie-cookie-cookie')
  const k = deriveClusterKeys(c, 'x')
  t.not(k.authKey.toString('hex'), k.beaconKey.toString('hex'))
  t.not(deriveClusterKeys(c, 'y').authKey.toString('hex'), k.authKey.toString('hex'))
  t.not(deriveClusterKeys(Buffer.from('cookie-cookie-cookie-cookiE'), 'x').authKey.toString('hex'), k.authKey.toString('hex'))
  t.equal(deriveClusterKeys(Buffer.from('other-other-other-other'), 'x').clusterHash.toString('hex'), k.clusterHash.toString('hex'),
    'the cluster hash depends on the name only')
})

t.test('cookie file: owner-only files are read; others refused with a clear message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-cookie-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = join(dir, 'cookie')
  writeFileSync(f, 'abcdefghijklmnopqrstuvwxyz012345\n')
  chmodSync(f, 0o600)
  t.equal(readCookieFile(f).toString(), 'abcdefghijklmnopqrstuvwxyz012345')
  chmodSync(f, 0o644)
  t.throws(() => readCookieFile(f), { code: 'ECOOKIE', message: /mode 644; it must be readable by its owner only \(chmod 600/ })
  chmodSync(f, 0o640)
  t.throws(() => readCookieFile(f), { code: 'ECOOKIE' })
  writeFileSync(f, 'short')
  chmodSync(f, 0o400)
  t.throws(() => readCookieFile(f), { code: 'ECOOKIE', message: /at least 16 are needed/ })
  t.throws(() => readCookieFile(join(dir, 'missing')), { code: 'ECOOKIE', message: /cannot read cookie file/ })
})
