import t from 'tap'
import { spawn } from 'node:child_process'
import { ModelFs } from '../../src/fs/model.js'
import { checkFs } from '../../src/fs/check.js'
import { ROOT_INO } from '../../src/fs/types.js'
import { tempDir } from '../helpers/tmp.js'

const modelUrl = new URL('../../src/fs/model.js', import.meta.url).href

// The child commits without fsync, leaves an unlinked file open, then dies by SIGKILL.
const child = `
import { ModelFs } from ${JSON.stringify(modelUrl)}
const fs = await ModelFs.open(process.argv[1], { fragments: 4, inlineMax: 0 })
const c = { uid: 7, gid: 7, pid: process.pid }
const a = await fs.mknod(1, 'kept', 0o100644, 0, c)
await fs.write(a.ino, 0, Buffer.alloc(300000, 0x5a))
const tmp = await fs.mknod(1, 'tmp', 0o100644, 0, c)
await fs.write(tmp.ino, 0, Buffer.alloc(200000, 1))
await fs.open(tmp.ino)
await fs.unlink(1, 'tmp')
process.stdout.write(JSON.stringify({ tmp: tmp.ino }) + '\\n', () => process.kill(process.pid, 'SIGKILL'))
`

t.test('a killed process keeps every committed operation, and its open orphans are freed at the next start', async (t) => {
  const dir = tempDir(t)
  const proc = spawn(process.execPath, ['--input-type=module', '-e', child, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
  const signal = await new Promise<string | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)))
  clearTimeout(timer)
  t.equal(signal, 'SIGKILL')
  const { tmp } = JSON.parse(out) as { tmp: number }

  const fs = await ModelFs.open(dir)
  t.teardown(() => fs.close())
  const kept = await fs.lookup(ROOT_INO, 'kept')
  t.equal(kept.size, 300000)
  t.ok((await fs.read(kept.ino, 0, 300000)).equals(Buffer.alloc(300000, 0x5a)))
  await t.rejects(fs.getattr(tmp), { code: 'ENOENT' }, 'the orphan was freed at start')
  t.equal(await fs.tables.countRows('block', tmp % 4), Math.ceil(300000 / 65536), 'only the kept file\'s blocks remain in the fragment')
  t.same(await checkFs(fs.tables), [])
})
