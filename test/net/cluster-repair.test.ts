/**
 * `walkenfs repair` with real daemons and real FUSE mounts (mount-lab.ts):
 * one host's copy of a file block is changed directly in its lmdb while it
 * is stopped; `check --replicas` finds the difference, `repair` rebuilds
 * that replica from its leader, after which the replicas agree and the
 * host reads the right bytes.
 */
import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { netnsAvailable, until } from './netns.js'
import { MountLab } from './mount-lab.js'
import { Store } from '../../src/store/store.js'

const skip = netnsAvailable()
const FAST = ['heartbeat_ms=200']

function clusterOf (s: { json: any }): any {
  return s.json?.mounts?.[0]?.cluster
}

t.test('a replica changed behind Raft\'s back is found by check --replicas and rebuilt by repair', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const hosts = [0, 1, 2].map(() => lab.addHost(FAST))
  const peers = lab.peersOption()
  for (const h of hosts) h.opts.push(peers, 'expect=3', 'fragments=4')
  await Promise.all(hosts.map((h) => lab.mustMount(h)))
  const [h1, h2] = hosts as [typeof hosts[0], typeof hosts[0]]
  await until('every fragment has 3 voters and a leader', async () => clusterOf(await lab.status(h1))?.fragments.every((f: any) =>
    f.leader !== null && f.replicas.filter((r: any) => r.role === 'voter').length === 3) ?? false, 90_000)

  const content = Buffer.from('MARKER-0123456789-'.repeat(8000))
  await writeFile(join(h1.mnt, 'victim'), content)
  await until('replicas identical on every host', async () => (await lab.cli(h1, ['check', '--replicas', h1.mnt], 60_000)).code === 0, 60_000)

  t.equal((await lab.umount(h2)).code, 0, 'h2 stops')
  const store = Store.open(h2.data)
  let changed: string | null = null
  try {
    for (const { key, value } of store.rowsDb.getRange({})) {
      const at = (value as Buffer).indexOf('MARKER-')
      if (at < 0) continue
      const v = Buffer.from(value as Buffer)
      v.write('BROKEN-', at)
      await store.rowsDb.put(key as Buffer, v)
      changed = `fs/${(key as Buffer).readUInt16BE(0)}`
      break
    }
  } finally {
    await store.close()
  }
  t.ok(changed, `a block of the file was changed in h2's store (${changed})`)
  await lab.mustMount(h2)

  // h2 serves reads from its own replica: the change is visible there until the repair.
  t.ok((await readFile(join(h2.mnt, 'victim'))).includes('BROKEN-'), 'h2 reads the changed bytes before the repair')
  const found = await lab.cli(h2, ['check', '--replicas', h2.mnt], 120_000)
  t.equal(found.code, 1, 'check --replicas reports the difference')
  t.match(found.stdout, new RegExp(`${changed}: mismatch`))

  const rep = await lab.cli(h2, ['repair', h2.mnt], 600_000)
  t.comment(rep.stdout + rep.stderr)
  t.equal(rep.code, 0, 'repair exits 0: every replica agrees')
  t.match(rep.stdout, new RegExp(`${changed}: replica on h2 differs .*rebuilding… done \\(h2: [0-9.]+ (KiB|MiB|bytes)`), 'one progress line for the fragment')
  t.match(rep.stdout, /1 replica\(s\) rebuilt; now 4 of 4 fragments identical/, 'a summary')

  const clean = await lab.cli(h2, ['check', '--replicas', h2.mnt, '--json'], 120_000)
  t.equal(clean.code, 0, 'check --replicas is clean afterwards')
  t.ok((await readFile(join(h2.mnt, 'victim'))).equals(content), 'h2 reads the right content')
  const again = await lab.cli(h2, ['repair', h2.mnt, '--json'], 120_000)
  t.equal(again.code, 0, 'a second repair has nothing to do')
  t.same(JSON.parse(again.stdout).repairs, [], '--json: no repair done')
})
