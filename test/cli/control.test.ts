import t from 'tap'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { askControl, serveControl } from '../../src/cli/control.js'

t.test('the control socket answers, reports handler errors and unknown commands, and times out', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'walkenfs-control-'))
  const path = join(dir, 'x.sock')
  const logs: string[] = []
  const close = await serveControl(path, {
    echo: (args) => ({ got: args }),
    fail: () => { throw new Error('no quorum for fs/3') },
    hang: () => new Promise(() => {})
  }, (l) => logs.push(l))
  t.teardown(async () => { await close(); rmSync(dir, { recursive: true, force: true }) })
  t.equal(statSync(path).mode & 0o777, 0o600, 'only its owner may ask')
  t.same(await askControl(path, 'echo', { a: 1 }), { got: { a: 1 } })
  await t.rejects(askControl(path, 'fail'), /no quorum for fs\/3/)
  await t.rejects(askControl(path, 'nope'), /unknown control command "nope"; known: echo, fail, hang/)
  await t.rejects(askControl(path, 'hang', {}, 200), /did not answer "hang" .* within 0.2 s/)
  await t.rejects(askControl(join(dir, 'missing.sock'), 'echo'), /cannot reach the daemon/)
})
