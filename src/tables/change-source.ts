/**
 * The change feeds of a cluster, for a watcher on any host: serves
 * `tables.changes` long polls from this host's replicas, and reads a
 * fragment's feed from the best replica (the local one when it is a
 * voter the catalog lists, else every replica host in turn).
 *
 * Promise (with change-feed.ts): the reader names the last index it saw;
 * any voting replica answers from there or says `gap`, so a leader change,
 * a dead replica or a lost link costs a retry, never a missed or doubled
 * batch. A replica that is cut off from its majority simply has nothing
 * new until the partition heals (its batches are committed ones, only late).
 *
 * RPC: `tables.changes {fragment, after, waitMs}` → `{ok:true, result: FeedRead}`
 * or `{ok:false, code, message}` (never throws, like the router's handlers).
 */
import { fragmentId } from '../cluster/placement.js'
import { pollFeed, type ChangeFeeds, type ChangeSource, type FeedRead } from './change-feed.js'
import type { FragmentRouter } from './router.js'
import { withDeadline } from '../util/deadline.js'

/** Longest long poll a server accepts (a client's RPC deadline is this plus a margin). */
const MAX_WAIT_MS = 10_000
const RPC_MARGIN_MS = 3_000
const CATCH_UP_MS = 1_000

type Reply = { ok: true, result: FeedRead } | { ok: false, code: string, message: string }

export class ClusterChangeSource implements ChangeSource {
  /** the replica host each fragment is read from while it answers (bounded by the fragment count) */
  private readonly sticky = new Map<number, string>()

  constructor (private readonly router: FragmentRouter, private readonly feeds: ChangeFeeds, readonly streams: number) {
    router.env.handle('tables.changes', async (p) => await this.serve(p))
  }

  /** Bytes of changes this host's rings hold (`counters.watch.feedBytes`). */
  feedBytes (): number { return this.feeds.heldBytes() }

  async poll (fragment: number, after: number | null, waitMs: number): Promise<FeedRead> {
    const g = fragmentId('fs', fragment)
    const wait = Math.min(MAX_WAIT_MS, Math.max(0, waitMs))
    if (this.router.localUsable(g) && this.feeds.has(fragment)) {
      if (after === null) await this.caughtUp(g)
      return await pollFeed(this.feeds.of(fragment), after, wait)
    }
    const env = this.router.env
    const hosts = env.replicas(g).filter((h) => h !== env.self && (env.linked?.(h) ?? true))
    if (hosts.length === 0) throw new Error(`no replica host of fragment ${fragment} is reachable`)
    const prev = this.sticky.get(fragment)
    const host = prev !== undefined && hosts.includes(prev) ? prev : hosts[Math.floor(Math.random() * hosts.length)]!
    this.sticky.set(fragment, host)
    try {
      const r = await env.call(host, 'tables.changes', { fragment, after, waitMs: wait }, wait + RPC_MARGIN_MS) as Reply
      if (!r.ok) throw new Error(`${host}: ${r.message}`)
      return r.result
    } catch (e) {
      // Next time another replica (the caller retries from the same index).
      const others = hosts.filter((h) => h !== host)
      if (others.length > 0) this.sticky.set(fragment, others[Math.floor(Math.random() * others.length)]!)
      throw e
    }
  }

  /**
   * A starting position should include every transaction committed before
   * the watch began, also on a follower that lags: wait (briefly) for a
   * ReadIndex round, after which this replica applied all of them. Without
   * a leader the position is taken as it is (changes from then on are still
   * all reported; a few older ones may be too).
   */
  private async caughtUp (g: string): Promise<void> {
    await withDeadline(this.router.env.raft.read(g).catch(() => {}), CATCH_UP_MS, undefined)
  }

  /** The host fragment `fragment` was last read from (this host when its replica serves it). */
  servingHost (fragment: number): string | undefined {
    const g = fragmentId('fs', fragment)
    return this.router.localUsable(g) && this.feeds.has(fragment) ? this.router.env.self : this.sticky.get(fragment)
  }

  private async serve (p: unknown): Promise<Reply> {
    const { fragment, after, waitMs } = (p ?? {}) as { fragment?: unknown, after?: unknown, waitMs?: unknown }
    if (!Number.isInteger(fragment) || !(after === null || Number.isInteger(after)) || typeof waitMs !== 'number') {
      return { ok: false, code: 'EINVAL', message: 'malformed tables.changes request' }
    }
    const f = fragment as number
    if (!this.router.localUsable(fragmentId('fs', f)) || !this.feeds.has(f)) {
      return { ok: false, code: 'NO_GROUP', message: `host ${this.router.env.self} holds no voting replica of fragment ${f}` }
    }
    try {
      if (after === null) await this.caughtUp(fragmentId('fs', f))
      return { ok: true, result: await pollFeed(this.feeds.of(f), after as number | null, Math.min(MAX_WAIT_MS, Math.max(0, waitMs))) }
    } catch (e) {
      return { ok: false, code: 'NO_GROUP', message: `host ${this.router.env.self}, fragment ${f}: ${(e as Error).message}` }
    }
  }
}
