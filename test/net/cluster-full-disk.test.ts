/**
 * A full data disk on one host of a 3-host cluster of real hosts
 * (mount-lab.ts), its data directory a small tmpfs: writers on that host
 * get ENOSPC (not a hang), its mount keeps reading current content from the
 * other replicas, the other hosts keep writing, and once space is freed
 * writes through the full host work again by themselves. Then two full
 * hosts of three: writes on the third fail with EROFS (no majority), reads
 * go on, and writes work again once space is freed. About 30 s. Timings are
 * printed, never asserted; deadlines only turn a hang into a failure.
 */
import t from 'tap'
import { readFile, writeFile, open } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { netnsAvailable, until } from './netns.js'
import { MountLab, type ClusterHost } from './mount-lab.js'
import { fillDataDir, probeUntilOk, probeWrite } from '../faults/final-state.js'

const skip = netnsAvailable()
// quorum_wait=3s: the EROFS of a fragment without a majority comes after it.
const SETTINGS = ['heartbeat_ms=200', 'fragments=4', 'copies=3', 'quorum_wait=3s']

async function writeSynced (file: string, body: string): Promise<void> {
  const fh = await open(file, 'w')
  try {
    await fh.writeFile(body)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

t.test('a full data disk: ENOSPC for writers on that host, reads and the other hosts go on, writes recover once space is freed', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const hosts = Array.from({ length: 3 }, () => lab.addHost(SETTINGS))
  const [full, other, second] = hosts as [ClusterHost, ClusterHost, ClusterHost]
  // Two data directories are tmpfs of their own; unmounted after the daemons stop (MountLab's destroy runs first).
  for (const h of [full, second]) {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', `walkenfs-fulldisk-${h.id}`, h.data], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`cannot mount a tmpfs for ${h.id}'s data directory (needs root): ${r.stderr}`)
    lab.lab.beforeDestroy.push(() => { if (spawnSync('umount', [h.data]).status !== 0) spawnSync('umount', ['-l', h.data]) })
  }
  const peers = lab.peersOption()
  for (const h of hosts) h.opts.push(peers, 'expect=3')
  await Promise.all(hosts.map(async (h) => { await lab.mustMount(h) }))
  // Writes on the other hosts need 2 of 3 replicas of every fragment without the full one, and of the schema group,
  // which a new cluster grows from one voter (the first host, the one filled below) after its fragments are placed.
  await until('every fragment has 3 voters and a leader, placement settled', async () => await lab.settled(other, 3, true), 90_000)

  const shared = join(full.mnt, 'shared')
  await writeSynced(shared, 'before the disk filled')
  t.equal(await readFile(join(other.mnt, 'shared'), 'utf8'), 'before the disk filled', 'the other host reads what the full host wrote before')

  const filler = join(full.data, 'filler')
  const mib = fillDataDir(full.data)
  t.teardown(() => { try { unlinkSync(filler) } catch { /* freed by the test */ } })
  t.comment(`${full.id}: data tmpfs filled with ${mib} MiB`)

  const started = Date.now()
  const answer = await probeWrite(join(full.mnt, 'probe'), 1)
  t.comment(`${full.id}: 1 MiB write + fsync on the full disk answered ${answer} after ${Date.now() - started} ms`)
  t.equal(answer, 'ENOSPC', 'a write + fsync through the full host\'s mount gets ENOSPC (not a hang)')
  const small = await writeFile(join(full.mnt, 'small'), 'x').then(() => 'ok', (e: NodeJS.ErrnoException) => e.code ?? String(e))
  t.equal(small, 'ENOSPC', 'so does creating a small file there')
  const log = readFileSync(full.log, 'utf8')
  t.match(log, `host ${full.id} has no room on its data disk (data directory ${full.data}`, 'the full host\'s log names the host and its data directory')

  t.equal(await readFile(shared, 'utf8'), 'before the disk filled', 'the full host\'s mount still reads')
  const wrote = Date.now()
  await writeSynced(join(other.mnt, 'shared'), 'written on another host meanwhile')
  await writeSynced(join(other.mnt, 'during'), 'a new file')
  t.comment(`${other.id}: writes while ${full.id} is full took ${Date.now() - wrote} ms`)
  t.pass(`writes through ${other.id} work while ${full.id} is full`)
  t.equal(await readFile(shared, 'utf8'), 'written on another host meanwhile', 'the full host\'s mount reads the current content, not its paused replica')
  t.equal(await readFile(join(full.mnt, 'during'), 'utf8'), 'a new file', 'and sees files created meanwhile')

  unlinkSync(filler)
  const freed = Date.now()
  const after = await probeUntilOk(join(full.mnt, 'probe'), 1, 100, 100)
  t.comment(`${full.id}: writes work again ${Date.now() - freed} ms after space was freed`)
  t.equal(after, 'ok', 'once space is freed, a write + fsync through the full host works again by itself')
  t.match(readFileSync(full.log, 'utf8'), `host ${full.id} has room on its data disk again`, 'and its log says so')
  await writeSynced(shared, 'after the space was freed')
  t.equal(await readFile(join(other.mnt, 'shared'), 'utf8'), 'after the space was freed', 'and the other hosts read it')
  const st = await readFile(join(other.mnt, 'probe'))
  t.equal(st.length, 1 << 20, 'the probe written after recovery is whole on the other host')

  // Two of three replicas on full disks: no majority for any fragment.
  const fillers = [full, second].map((h) => join(h.data, 'filler'))
  for (const h of [full, second]) fillDataDir(h.data)
  t.teardown(() => { for (const f of fillers) { try { unlinkSync(f) } catch { /* freed by the test */ } } })
  const noMajority = await probeWrite(join(other.mnt, 'no-majority'), 1)
  t.equal(noMajority, 'EROFS', `with ${full.id} and ${second.id} full, a write on ${other.id} fails with EROFS (no majority; its outcome is unknown)`)
  t.equal(await readFile(shared, 'utf8'), 'after the space was freed', 'reads still work on a full host')
  t.equal(await readFile(join(other.mnt, 'shared'), 'utf8'), 'after the space was freed', 'and on the host with room')
  for (const f of fillers) unlinkSync(f)
  t.equal(await probeUntilOk(join(other.mnt, 'no-majority'), 1, 100, 100), 'ok', 'once space is freed, writes work again everywhere')
})
