/**
 * The systemd unit of examples/systemd, checked by systemd's own
 * `systemd-analyze verify` and then run as systemd runs a Type=forking
 * unit: ExecStart must return with the filesystem mounted and a daemon left
 * behind, ExecStop must unmount it and leave no daemon. systemd is not PID 1
 * on this machine kind, so the test runs the unit's command lines itself;
 * the only change to them is the path of the LSB script (the repo's copy
 * instead of /etc/init.d).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findMount } from '../../src/fuse/mount-table.js'
import { isAlive, readRecord } from '../../src/cli/daemon.js'
import { makeMount } from '../helpers/mount.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const unitPath = join(repo, 'examples', 'systemd', 'walkenfs.service')
const initScript = join(repo, 'init.d', 'walkenfs')

/** `[Section] key=value` lines of a unit file; repeated keys keep every value. */
function parseUnit (text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>()
  let current: Map<string, string[]> | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header !== null) {
      current = new Map()
      sections.set(header[1]!, current)
      continue
    }
    const eq = line.indexOf('=')
    if (current === undefined || eq < 0) throw new Error(`not a unit line: ${line}`)
    const key = line.slice(0, eq).trim()
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()])
  }
  return sections
}

async function waitFor (pred: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (pred()) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return pred()
}

t.test('examples/systemd/walkenfs.service mounts and unmounts a working walkenfs', async (t) => {
  const m = makeMount(t)
  const unitText = readFileSync(unitPath, 'utf8').replaceAll('/etc/init.d/walkenfs', initScript)
  const unit = parseUnit(unitText)
  const service = unit.get('Service')
  t.ok(service !== undefined && unit.has('Unit') && unit.has('Install'), 'Unit, Service and Install sections')
  t.same(service!.get('Type'), ['forking'], 'Type=forking: start returns once mounted, the daemon stays')

  const verifyCopy = join(m.base, 'walkenfs.service')
  writeFileSync(verifyCopy, unitText)
  const verify = spawnSync('systemd-analyze', ['verify', verifyCopy], { encoding: 'utf8' })
  if (verify.error !== undefined) {
    t.comment(`systemd-analyze not available (${verify.error.message}); unit syntax checked by the parser only`)
  } else {
    t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`)
    t.equal(verify.stderr.trim(), '', 'no warnings')
  }

  const defaults = join(m.base, 'default-walkenfs')
  writeFileSync(defaults, `WALKENFS_MOUNT=${m.mnt}\nWALKENFS_DATA=${m.data}\nWALKENFS_BIN=${join(repo, 'bin', 'walkenfs')}\n`)
  const exec = (key: 'ExecStart' | 'ExecStop') => {
    const lines = service!.get(key) ?? []
    t.equal(lines.length, 1, `one ${key} line`)
    const [cmd, ...args] = lines[0]!.split(/\s+/)
    return spawnSync(cmd!, args, { encoding: 'utf8', env: { ...process.env, WALKENFS_DEFAULTS: defaults }, timeout: 120_000 })
  }

  const start = exec('ExecStart')
  t.equal(start.status, 0, `ExecStart: ${start.stdout}${start.stderr}`)
  t.equal(findMount(m.mnt)?.fsType, 'fuse.walkenfs', 'mounted when ExecStart returns')
  const pid = readRecord(m.mnt)?.pid
  t.ok(pid !== undefined && isAlive(pid), 'a daemon is left behind as the main process')
  writeFileSync(join(m.mnt, 'from-systemd'), 'works')
  t.equal(readFileSync(join(m.mnt, 'from-systemd'), 'utf8'), 'works', 'the mount works')

  const stop = exec('ExecStop')
  t.equal(stop.status, 0, `ExecStop: ${stop.stdout}${stop.stderr}`)
  t.equal(findMount(m.mnt), undefined, 'unmounted when ExecStop returns')
  t.ok(await waitFor(() => !isAlive(pid!), 10_000), 'the daemon exited')

  const again = exec('ExecStart')
  t.equal(again.status, 0, `ExecStart again: ${again.stderr}`)
  t.equal(readFileSync(join(m.mnt, 'from-systemd'), 'utf8'), 'works', 'data kept across a stop and start')
  t.equal(exec('ExecStop').status, 0)
})
