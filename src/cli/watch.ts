/**
 * `walkenfs watch PATH [--json]`: prints the changes (created, written,
 * renamed, removed) under PATH made by any host, one line each, until
 * killed; and the daemon side of it, a `watch` stream on the control socket.
 *
 * The CLI finds the walkenfs mount that contains PATH (the longest mount
 * point of a live daemon that is a prefix of the absolute path), asks its
 * daemon over the control socket, and prints. Lines:
 *   2026-11-22T10:00:00.123Z created /etc/app/new.conf
 *   2026-11-22T10:00:00.123Z renamed /etc/app/.tmp123 -> /etc/app/app.conf
 * paths inside the mount (what every host shares; the mount point may
 * differ between hosts). `--json`: one object per line {time, kind, path,
 * from?, ino, type, host?}. `watching PATH (N fragments)` goes to stderr
 * once subscribed. A `rescan` line (kind `rescan` in JSON) says changes
 * may have been missed and the consumer should re-read what it watches.
 *
 * Exit: 0 on SIGINT/SIGTERM; 1 when the daemon ends the stream (unmounted,
 * the path vanished at start, the consumer was too slow), with a message.
 */
import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { hostname } from 'node:os'
import { isAlive, listRecords } from './daemon.js'
import { streamControl, type ControlStream } from './control.js'
import { Watcher, formatLine, hostOfTxn, normalizeWatchPath, type WatchLine } from '../fs/watcher.js'
import type { Tables } from '../tables/types.js'
import type { ChangeSource } from '../tables/change-feed.js'

const EXIT_USAGE = 1

/** The control stream `watch {path}` of a daemon serving `tables`. */
export function watchStream (tables: Tables, source: ChangeSource, mode: 'cluster' | 'local'): ControlStream {
  return async (args, send, signal) => {
    if (typeof args.path !== 'string') throw new Error('watch needs a path inside the mount')
    const path = normalizeWatchPath(args.path)
    // Lines that come before the `watching` message wait for it (bounded by the watcher's backpressure).
    let early: WatchLine[] | null = []
    const out = (l: WatchLine): void => { if (!send(l)) void w.stop() }
    const w = new Watcher({
      tables,
      source,
      path,
      hostOf: mode === 'cluster' ? hostOfTxn : () => hostname(),
      onLine: (l: WatchLine) => { if (early) early.push(l); else out(l) }
    })
    const { streams } = await w.start()
    send({ watching: path, streams })
    const waiting = early
    early = null
    for (const l of waiting) out(l)
    if (!signal.aborted) await Promise.race([w.ended, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))])
    await w.stop()
    if (w.error) throw new Error(`${w.error.message}; changes after this point were not reported`)
  }
}

/** The live mount whose mount point contains `abs`, and the path inside it. */
function mountOf (abs: string): { control: string, mountPoint: string, inside: string } | null {
  let best: { control: string, mountPoint: string, inside: string } | null = null
  for (const r of listRecords()) {
    if (r.control === undefined || !isAlive(r.pid)) continue
    const mp = resolve(r.mountPoint)
    if (abs !== mp && !abs.startsWith(mp === '/' ? '/' : mp + '/')) continue
    if (best && best.mountPoint.length >= mp.length) continue
    best = { control: r.control, mountPoint: mp, inside: normalizeWatchPath(abs.slice(mp.length)) }
  }
  return best
}

export async function doWatch (args: string[]): Promise<number> {
  const json = args.includes('--json')
  const paths = args.filter((a) => a !== '--json')
  if (paths.length !== 1 || paths[0]!.startsWith('-')) {
    console.error('walkenfs: usage: walkenfs watch PATH [--json]   (PATH: a file or directory on a walkenfs mount)')
    return EXIT_USAGE
  }
  let abs = resolve(paths[0]!)
  // A symlink on the way to the mount (/etc/app → /mnt/w/etc/app) still finds it; a missing path is the daemon's to refuse.
  try { abs = realpathSync(abs) } catch {}
  const m = mountOf(abs)
  if (m === null) {
    console.error(`walkenfs: ${abs} is not on a walkenfs mount served by a daemon on this host (see walkenfs status)`)
    return 1
  }
  let stopped = false
  const s = streamControl(m.control, 'watch', { path: m.inside }, (msg) => {
    const o = msg as WatchLine | { watching: string, streams: number }
    if ('watching' in o) {
      process.stderr.write(`watching ${m.mountPoint === '/' ? '' : m.mountPoint}${o.watching === '/' ? '' : o.watching} (${o.streams} fragment${o.streams === 1 ? '' : 's'})\n`)
      return
    }
    process.stdout.write(formatLine(o, json) + '\n')
  })
  const onSignal = (): void => { stopped = true; s.stop() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const why = await s.done
    if (stopped) return 0
    console.error(`walkenfs: watch ended: ${why}`)
    return 1
  } catch (e) {
    console.error(`walkenfs: ${(e as Error).message}`)
    return 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
