/**
 * The app-data examples across hosts of one cluster (real daemons, real FUSE
 * mounts, one per network namespace): a configuration directory replaced by
 * write-temp-fsync-rename on host A while a reader on host B checks every
 * read is one whole version; a sqlite database written on A, checked and
 * written on B, read back on C (one writing host at a time, as the example's
 * README says); a file open on B that A unlinks or renames over stays
 * readable on B until B closes it, as on a local filesystem; appends from
 * two hosts to one file all land, once each. git-repo.sh
 * runs in the one-host test only: its thousands of small operations take
 * minutes on a 3-host cluster of this 2-core machine (see docs/performance.md).
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { netnsAvailable } from './netns.js'
import { MountLab, type ClusterHost } from './mount-lab.js'

const skip = netnsAvailable()
const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'app-data')

function run (cmd: string, args: string[], env: Record<string, string> = {}): { status: number, out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 480_000 })
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` }
}

t.test('app-data examples across three hosts', { skip: skip ?? false }, async (t) => {
  const lab = new MountLab(t)
  const [a, b, c] = await lab.formCluster(3) as [ClusterHost, ClusterHost, ClusterHost]
  const at = (h: ClusterHost, ...names: string[]) => join(h.mnt, 'app-data', ...names)

  await t.test('config-dir.sh: written on A, read on B the whole time: only whole versions', async (t) => {
    const versions = 15
    const r = run('bash', [join(examples, 'config-dir.sh'), a.mnt, b.mnt], { CONFIG_VERSIONS: String(versions) })
    t.equal(r.status, 0, 'config-dir.sh exits 0', { output: r.out })
    const line = /reader: (\d+) reads, (\d+) distinct versions, (\d+) partial, (\d+) missing, (\d+) reopened/.exec(r.out)
    t.ok(line, 'the reader printed its counts', { output: r.out })
    if (line === null) return
    const [reads, distinct, partial, missing, reopened] = line.slice(1, 6).map(Number)
    t.equal(partial, 0, 'no read on B saw a mix of versions or a short file')
    t.equal(missing, 0, 'the file was always there to open on B')
    t.equal(reopened, 0, 'no open on B raced the rename (that happens only on the writer\'s own host)')
    t.ok(reads! > 0 && distinct! > 1, `B read while A wrote and saw the file change (${reads} reads, ${distinct} versions)`)
    const conf = readFileSync(at(c, 'config', 'app.conf'), 'utf8').split('\n')
    t.equal(conf[0], `version ${versions} lines 200`, 'C reads the last version')
    t.equal(conf[201], `end ${versions}`)
  })

  await t.test('sqlite: written on A, checked and written on B, read on C', async (t) => {
    const r = run('bash', [join(examples, 'sqlite.sh'), a.mnt], { SQLITE_ROWS: '10', SQLITE_BUSY_MS: '120000' })
    t.equal(r.status, 0, 'sqlite.sh exits 0 on A', { output: r.out })
    const q = (h: ClusterHost, sql: string): string => {
      const res = run('sqlite3', ['-cmd', '.timeout 120000', at(h, 'sqlite', 'app.db'), sql])
      t.equal(res.status, 0, `sqlite3 on ${h.id}: ${sql}`, { output: res.out })
      return res.out.trim()
    }
    t.equal(q(b, 'PRAGMA integrity_check;'), 'ok', 'integrity_check on B')
    t.equal(q(b, "SELECT writer || ':' || count(*) FROM events GROUP BY writer ORDER BY writer;"), 'a:10\nb:10', 'B sees every row A wrote')
    q(b, "BEGIN IMMEDIATE; INSERT INTO events(writer, n, body) VALUES('host-b', 1, 'from B'); COMMIT;")
    t.equal(q(c, "SELECT body FROM events WHERE writer = 'host-b';"), 'from B', 'C sees the row B wrote')
    t.equal(q(c, 'PRAGMA integrity_check;'), 'ok', 'integrity_check on C')
  })

  await t.test('a file open on B stays readable when A unlinks it or renames over it', async (t) => {
    const dir = join(a.mnt, 'held')
    mkdirSync(dir)
    writeFileSync(join(dir, 'log.1'), 'rotated away\n'.repeat(1000))
    writeFileSync(join(dir, 'app.conf'), 'version 1\n'.repeat(1000))
    const readAll = (fd: number): string => {
      const buf = Buffer.alloc(64 * 1024)
      const n = readSync(fd, buf, 0, buf.length, 0)
      return buf.subarray(0, n).toString()
    }
    const logFd = openSync(join(b.mnt, 'held', 'log.1'), 'r')
    const confFd = openSync(join(b.mnt, 'held', 'app.conf'), 'r')
    try {
      unlinkSync(join(dir, 'log.1'))
      writeFileSync(join(dir, '.app.conf.tmp'), 'version 2\n'.repeat(1000))
      renameSync(join(dir, '.app.conf.tmp'), join(dir, 'app.conf'))
      // the unlinking host frees a file only once no host answers that it holds it
      await new Promise((resolve) => setTimeout(resolve, 1000))
      t.equal(readAll(logFd), 'rotated away\n'.repeat(1000), 'B reads the unlinked file through its handle')
      t.equal(readAll(confFd), 'version 1\n'.repeat(1000), 'B reads the replaced version through its handle')
      t.equal(readFileSync(join(b.mnt, 'held', 'app.conf'), 'utf8'), 'version 2\n'.repeat(1000), 'a new open on B gets the new version')
    } finally {
      closeSync(logFd)
      closeSync(confFd)
    }
    const r = await lab.cli(a, ['check', a.mnt], 120_000)
    t.equal(r.code, 0, `walkenfs check is clean after B closed them: ${r.stdout}${r.stderr}`)
  })

  await t.test('appends from two hosts to one file (O_APPEND, close after each line): none lost, none doubled', async (t) => {
    const file = join(a.mnt, 'shared.log')
    writeFileSync(file, '')
    const lines = 40
    const appender = (h: ClusterHost, tag: string) => new Promise<number>((resolve) => {
      const p = spawn('bash', ['-c', `for i in $(seq 1 ${lines}); do echo "${tag} $i" >> '${join(h.mnt, 'shared.log')}'; done`])
      p.on('close', (code) => resolve(code ?? -1))
    })
    const codes = await Promise.all([appender(a, 'A'), appender(b, 'B')])
    t.same(codes, [0, 0], 'both appenders succeeded')
    const got = readFileSync(join(c.mnt, 'shared.log'), 'utf8').split('\n').filter((l) => l !== '')
    const want = [...Array.from({ length: lines }, (_, i) => `A ${i + 1}`), ...Array.from({ length: lines }, (_, i) => `B ${i + 1}`)]
    t.same([...got].sort(), [...want].sort(), `every line once (${got.length} lines read on C)`)
    t.same(got.filter((l) => l.startsWith('A')), want.slice(0, lines), 'A\'s lines in A\'s order')
  })
})
