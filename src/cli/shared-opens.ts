/**
 * Open files across the hosts of a cluster: the question "does any other
 * host hold these inodes open?" that the fs model asks before it frees files
 * whose last name is gone, and the periodic sweep of orphans.
 *
 * Promises: an inode is reported free only when every other host in the
 * catalog answered that it does not hold it open. A host that cannot be
 * asked (down, cut off, too slow) counts as holding it: its space waits
 * until the host answers again or is retired, rather than a reader on it
 * losing the file under its open handle.
 */
import type { ClusterNode } from '../cluster/node.js'
import type { ModelFs } from '../fs/model.js'

const METHOD = 'fs.isOpen'
const ASK_DEADLINE_MS = 2000
/** most inodes one question names (the fs model asks in batches of 32) */
const MAX_ASK = 1024
const SWEEP_EVERY_MS = 10_000

/** For each of `inos`, whether another host of the cluster may hold it open (one question per host for all). */
export function openElsewhere (node: ClusterNode): (inos: number[]) => Promise<boolean[]> {
  return async (inos) => {
    const others = node.catalog().hosts.map((h) => h.id).filter((id) => id !== node.self)
    const answers = await Promise.all(others.map(async (host): Promise<boolean[] | null> => {
      if (!node.linked(host)) return null
      try {
        const r = await node.call(host, METHOD, { inos }, ASK_DEADLINE_MS) as { open?: unknown }
        return Array.isArray(r.open) && r.open.length === inos.length ? r.open.map((x) => x !== false) : null
      } catch {
        return null
      }
    }))
    // A host that did not answer (or answered something else) may hold any of them.
    return inos.map((_, i) => answers.some((a) => a === null || a[i]))
  }
}

/**
 * Answers other hosts' questions from `fs`, and sweeps the orphans of the
 * fragments this host leads every 10 s. Returns a stop function.
 */
export function serveSharedOpens (node: ClusterNode, fs: ModelFs, leading: () => number[], log: (line: string) => void): () => Promise<void> {
  node.handle(METHOD, async (p) => {
    const inos = (p as { inos?: unknown }).inos
    if (!Array.isArray(inos) || inos.length > MAX_ASK || !inos.every((ino) => typeof ino === 'number' && Number.isSafeInteger(ino))) {
      return { ok: false, code: 'EINVAL', message: `fs.isOpen needs a list of at most ${MAX_ASK} inode numbers` }
    }
    return { ok: true, open: inos.map((ino: number) => fs.isOpenHere(ino)) }
  })
  let sweeping: Promise<unknown> | null = null
  const timer = setInterval(() => {
    if (sweeping !== null) return
    sweeping = fs.sweepOrphans(leading())
      .catch((e: Error) => { log(`sweep of unlinked files: ${e.message}`) })
      .finally(() => { sweeping = null })
  }, SWEEP_EVERY_MS)
  timer.unref()
  return async () => {
    clearInterval(timer)
    await sweeping
  }
}
