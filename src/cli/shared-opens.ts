/**
 * Open files across the hosts of a cluster: the question "does any other
 * host hold inode N open?" that the fs model asks before it frees a file
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
const SWEEP_EVERY_MS = 10_000

/** Whether another host of the cluster may hold `ino` open. */
export function openElsewhere (node: ClusterNode): (ino: number) => Promise<boolean> {
  return async (ino) => {
    const others = node.catalog().hosts.map((h) => h.id).filter((id) => id !== node.self)
    const answers = await Promise.all(others.map(async (host) => {
      if (!node.linked(host)) return true
      try {
        const r = await node.call(host, METHOD, { ino }, ASK_DEADLINE_MS) as { open?: unknown }
        return r.open !== false
      } catch {
        return true
      }
    }))
    return answers.some((maybeOpen) => maybeOpen)
  }
}

/**
 * Answers other hosts' questions from `fs`, and sweeps the orphans of the
 * fragments this host leads every 10 s. Returns a stop function.
 */
export function serveSharedOpens (node: ClusterNode, fs: ModelFs, leading: () => number[], log: (line: string) => void): () => Promise<void> {
  node.handle(METHOD, async (p) => {
    const ino = (p as { ino?: unknown }).ino
    if (typeof ino !== 'number' || !Number.isSafeInteger(ino)) return { ok: false, code: 'EINVAL', message: 'fs.isOpen needs an inode number' }
    return { ok: true, open: fs.isOpenHere(ino) }
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
