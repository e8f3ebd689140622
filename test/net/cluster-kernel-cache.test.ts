/**
 * Kernel caches on a cluster (cache=lease, the default; docs/fuse.md
 * "Kernel caches on a cluster"), on three real hosts with real mounts: a
 * host's kernel answers a repeated stat alone, and yet every change made on
 * another host is seen at once, because the host drops what its kernel
 * keeps before that change can commit. The counters come from each
 * daemon's control socket (the FUSE calls it served, and what its kernel
 * cache kept and dropped).
 */
import t from 'tap'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { askControl } from '../../src/cli/control.js'
import { netnsAvailable } from './netns.js'
import { MountLab, type ClusterHost } from './mount-lab.js'

const skip = netnsAvailable()

interface Counters { fuse: Record<string, number>, kernelCache: { kept: number, dropped: number } | null }

async function counters (lab: MountLab, h: ClusterHost): Promise<Counters> {
  const s = await askControl(lab.controlSocket(h), 'status', {}, 10_000) as { counters: Counters }
  return s.counters
}

const calls = (c: Counters): number => Object.values(c.fuse).reduce((a, b) => a + b, 0)

t.test('three hosts: a repeated stat is answered by the kernel, and changes from other hosts are seen at once', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const hosts = await lab.formCluster(3)
  const [a, b, c] = hosts as [ClusterHost, ClusterHost, ClusterHost]
  mkdirSync(join(a.mnt, 'd'))
  writeFileSync(join(a.mnt, 'd', 'f'), 'one')
  const path = (h: ClusterHost, name = 'f'): string => join(h.mnt, 'd', name)

  // A follower's first read of a fragment asks the leader, which grants a read lease with the answer;
  // reads within the lease may be kept (names at most 250 ms, and less when the lease ends sooner). So the
  // stats run back to back, with no control-socket call between them, and a few times: in a cluster just
  // formed, leaderships still move and leases lapse. With cache=off every stat costs at least one call.
  const STATS = 50
  let cachedOnB = false
  let spent = 0
  for (let i = 0; i < 20 && !cachedOnB; i++) {
    const before = calls(await counters(lab, b))
    for (let k = 0; k < STATS; k++) statSync(path(b))
    spent = calls(await counters(lab, b)) - before
    cachedOnB = spent < STATS
  }
  t.ok(cachedOnB, `${STATS} stats in a row on B made fewer FUSE calls than stats (${spent}): the kernel answered some alone`)
  t.ok(((await counters(lab, b)).kernelCache?.kept ?? 0) > 0, 'B\'s kernel cache counts what it kept')

  const stale: string[] = []
  const droppedBefore = (await counters(lab, b)).kernelCache?.dropped ?? 0
  for (let i = 0; i < 30; i++) {
    // B looks first, so its kernel holds the name and the attributes when A changes them
    statSync(path(b))
    statSync(path(c))
    const mode = 0o600 + (i % 60)
    chmodSync(path(a), mode)
    for (const h of [b, c]) if ((statSync(path(h)).mode & 0o777) !== mode) stale.push(`${h.id}: mode after chmod ${i}`)
    renameSync(path(a), path(a, 'g'))
    for (const h of [b, c]) {
      if (existsSync(path(h))) stale.push(`${h.id}: old name after rename ${i}`)
      if (!existsSync(path(h, 'g'))) stale.push(`${h.id}: no new name after rename ${i}`)
    }
    renameSync(path(a, 'g'), path(a))
    const body = 'x'.repeat(i + 1)
    writeFileSync(path(c), body)
    if (statSync(path(b)).size !== body.length) stale.push(`b: size after C's write ${i}`)
    if (readFileSync(path(b), 'utf8') !== body) stale.push(`b: content after C's write ${i}`)
    if (readFileSync(path(a), 'utf8') !== body) stale.push(`a: content after C's write ${i}`)
  }
  t.same(stale, [], 'every change made on one host was seen at once on the others')
  t.ok(((await counters(lab, b)).kernelCache?.dropped ?? 0) > droppedBefore, 'B dropped kept names or attributes for other hosts\' changes')
})

t.test('cache=off: every stat asks the daemon', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const hosts = await lab.formCluster(3, ['heartbeat_ms=200', 'cache=off'])
  const [a, b] = hosts as [ClusterHost, ClusterHost]
  writeFileSync(join(a.mnt, 'f'), 'one')
  statSync(join(b.mnt, 'f'))
  for (let i = 0; i < 5; i++) {
    const before = calls(await counters(lab, b))
    statSync(join(b.mnt, 'f'))
    t.ok(calls(await counters(lab, b)) > before, `stat ${i} reached the daemon`)
  }
  t.equal((await counters(lab, b)).kernelCache, null, 'and no kernel cache runs')
})
