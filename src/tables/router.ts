/**
 * Sends a fragment's reads and proposals to a host that can serve them.
 *
 * Owns: choosing the host (local replica, leader, catalog hint, replicas in
 * turn), retries with jittered backoff, the `tables.read` / `tables.propose`
 * RPC handlers, and the stale-read bookkeeping that `walkenfs status`
 * shows. It talks to the rest of the node only through `RouterEnv`.
 *
 * Proposals (`propose`): to the local RaftHost when this host leads the
 * group, else `tables.propose` to the leader (the local replica's `lead`,
 * else the last leader we learned, else the catalog hint, else each replica
 * in turn). NOT_LEADER, UNKNOWN, BUSY, a missing group and link failures
 * are retried until `quorumWaitMs()` has passed; then the call fails with
 * code `EROFS`. Retrying an UNKNOWN outcome is safe because the fragment
 * machine applies a command at most once per txn id. An `EROFS` therefore
 * means "not known to be applied": the transaction layer treats it so.
 *
 * Reads (`read`): on a host with a replica, ReadIndex on the local RaftHost
 * (Raft forwards it to the leader), then the replica's rows, which are then
 * linearizable. If no ReadIndex succeeds within `staleAfterMs` (1 s), the
 * read is served from the local replica as it is (stale), the fragment is
 * marked leaderless and counted; later reads of a leaderless fragment are
 * served stale at once while one background probe per fragment keeps trying
 * ReadIndex and clears the mark when one succeeds. A host without a replica
 * (or only a learner, which may still be catching up) asks a replica host
 * (`tables.read`), which does the same; a read fails
 * with `EIO` only when no replica host answers within quorumWait.
 *
 * RPC payloads are plain maps with Buffers (the wire is msgpack); handlers
 * answer `{ok:false, code, message, leader?}` instead of throwing, so error
 * codes survive any wire.
 *
 * A host whose data disk has no room (`env.noRoom()`; its RaftHost is
 * paused, host.ts) takes no part until space is freed: its replicas are
 * not usable for reads (they go to another replica host, fresh), it
 * answers `tables.read` with NO_GROUP and `tables.propose` with NOT_LEADER
 * (callers retry elsewhere: 2 of 3 replicas still make a majority), and a
 * transaction started here that writes (`commit1`, `prepare`, `commitDecide`) fails at
 * once with `ENOSPC` naming the host and its data directory. Later steps
 * of a commit already under way (decide, resolve, forget, sweep) still go
 * to leaders elsewhere, so nothing is left half done.
 *
 * Bounds: per-fragment state (leader cache, stale marks and counts, one
 * probe) is bounded by the number of fragments.
 */
import { fragmentId } from '../cluster/placement.js'
import type { RaftHost } from '../raft/host.js'
import { RaftError } from '../raft/types.js'
import type { Store } from '../store/store.js'
import type { ChangeMarks } from './change-marks.js'
import { withDeadline } from '../util/deadline.js'
import { FragmentMachine, FragmentReader, type Command, type LocalRead, type ReadOp, type Result } from './fragment-machine.js'

export interface RouterEnv {
  readonly self: string
  readonly raft: RaftHost
  hasGroup (g: string): boolean
  hostOfNode (node: number): string | undefined
  replicas (g: string): string[]
  leaderHint (g: string): string | null
  call (host: string, method: string, payload: unknown, deadlineMs: number): Promise<unknown>
  handle (method: string, fn: (payload: unknown, from: string) => Promise<unknown>): void
  quorumWaitMs (): number
  /** Whether a link to `host` is up now; a host without one is skipped rather than waited for (optional). */
  linked? (host: string): boolean
  /**
   * Why this host's data disk takes no writes now (its RaftHost is paused
   * for room), or null (optional). `fresh`: ask the disk now rather than
   * take a recent answer (a write admitted on a stale "room" would be
   * committed by replicas elsewhere, as if the disk were not full).
   */
  noRoom? (fresh?: boolean): string | null
}

export interface RouterOptions {
  /** a read waits this long for ReadIndex before serving the local replica stale */
  staleAfterMs?: number
  /** first retry backoff; doubles up to maxBackoffMs, with jitter */
  backoffMs?: number
  maxBackoffMs?: number
  /** deadline of one RPC (capped by what is left of quorumWait) */
  callDeadlineMs?: number
  /** readLocal waits this long for the local replica to show this host's own last write before reading fresh */
  ownWriteWaitMs?: number
}

export interface RoutedRead extends LocalRead {
  /** served from a replica without a leader: maybe not current */
  stale: boolean
  /** readLocal only: served from this host's replica without any ReadIndex round (maybe not current) */
  local?: boolean
  /** served by this host's replica, which showed this log index then (at least); absent for reads by another host */
  at?: number
}

/** recheck(): `unchanged` when nothing was read again because nothing changed. */
export type Recheck = { unchanged: true } | (RoutedRead & { unchanged: false })

/** An error with a POSIX-style code that the fs layer passes on. */
export class RouterError extends Error {
  constructor (readonly code: string, message: string) {
    super(`${code}: ${message}`)
    this.name = 'RouterError'
  }
}

type Reply = { ok: true, result: unknown, index?: number } | { ok: false, code: string, message: string, leader?: string }

const RETRY_CODES = new Set(['NOT_LEADER', 'UNKNOWN', 'BUSY', 'TRANSFERRING', 'NO_GROUP', 'READ_NOT_READY', 'LINK'])

/** A read without `at`: another host's log position means nothing to this host's change marks. */
function withoutAt (r: RoutedRead): RoutedRead {
  const out: RoutedRead = { results: r.results, intents: r.intents, stale: r.stale }
  if (r.local !== undefined) out.local = r.local
  return out
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export class FragmentRouter {
  private readonly readers = new Map<number, FragmentReader>()
  private readonly leaderCache = new Map<number, string>()
  private readonly leaderless = new Set<number>()
  private readonly probing = new Set<number>()
  private readonly staleCounts = new Map<number, number>()
  /** per fragment, the log index of the newest proposal of this host known applied on its leader (read-your-writes for readLocal) */
  private readonly wrote = new Map<number, number>()
  private readonly o: Required<RouterOptions>
  private closed = false
  /** rechecks answered without reading (for counters) */
  unchangedChecks = 0

  /** `marks`: the change marks this host's fragment machines keep; without them recheck() always reads. */
  constructor (readonly env: RouterEnv, private readonly store: Store, opts: RouterOptions = {}, private readonly marks?: ChangeMarks) {
    this.o = { staleAfterMs: 1000, backoffMs: 10, maxBackoffMs: 250, callDeadlineMs: 5000, ownWriteWaitMs: 50, ...opts }
    env.handle('tables.read', async (p) => await this.serveRead(p))
    env.handle('tables.propose', async (p) => await this.serveProposal(p))
  }

  /** Stale reads served so far, per fragment (for `walkenfs status`). */
  staleReads (): Map<number, number> { return new Map(this.staleCounts) }

  /** Fragments whose local replica currently has no reachable leader. */
  leaderlessFragments (): number[] { return [...this.leaderless].sort((a, b) => a - b) }

  /** Stops background probes (they end at their next turn). */
  close (): void { this.closed = true }

  // ---- reads ---------------------------------------------------------------------

  async read (fragment: number, ops: ReadOp[]): Promise<RoutedRead> {
    const g = fragmentId('fs', fragment)
    if (this.localUsable(g)) return await this.readHere(fragment, ops)
    const r = await this.readRemote(fragment, ops, this.env.quorumWaitMs(), false)
    if (r.read) return r.read
    // Nobody answered: a voting replica here that the catalog does not list yet is better than nothing.
    // Never a learner: it may still be empty, and its "absent" would be a lie.
    if (this.isVoterHere(g)) return await this.readHere(fragment, ops)
    throw new RouterError('EIO', `cannot read fragment ${fragment}: no replica host answered within ${this.env.quorumWaitMs()} ms (last: ${r.last}); check the network to the hosts holding it`)
  }

  /**
   * An optimistic read for transactions that check what they read before
   * they finish (replicated.ts): this host's usable replica as it is, with
   * no ReadIndex round (`local: true`, maybe behind the leader); where this
   * host has no usable replica, or its fragment has no leader, the same as
   * read().
   */
  async readLocal (fragment: number, ops: ReadOp[]): Promise<RoutedRead> {
    const g = fragmentId('fs', fragment)
    if (!this.leaderless.has(fragment) && this.localUsable(g)) {
      // This host's own writes show here first: the replica may only be a
      // moment behind the leader that applied them; else a fresh read.
      const mine = this.wrote.get(fragment) ?? 0
      if (mine <= this.env.raft.appliedIndex(g) || await this.env.raft.whenApplied(g, mine, this.o.ownWriteWaitMs)) {
        return this.readReplica(fragment, ops, false, true)
      }
    }
    return await this.read(fragment, ops)
  }

  /**
   * Reads `ops` again to check reads of the fragment taken at log index
   * `seen` or later (RoutedRead.at). When this host's replica completes a
   * ReadIndex round and its change mark shows that nothing a read can see
   * changed after `seen`, the answer is `unchanged` and nothing is read:
   * the reads still hold now. Otherwise the same as read().
   */
  async recheck (fragment: number, ops: ReadOp[], seen: number | undefined): Promise<Recheck> {
    if (seen !== undefined && this.marks && this.localUsable(fragmentId('fs', fragment))) {
      const r = await this.readHere(fragment, ops, seen)
      return r.unchanged === true ? { unchanged: true } : { ...r, unchanged: false }
    }
    return { ...await this.read(fragment, ops), unchanged: false }
  }

  /** This host's replica as it is, with the log index it showed. */
  private readReplica (fragment: number, ops: ReadOp[], stale: boolean, local: boolean): RoutedRead {
    // Taken before reading: the replica shows at least this index (the store may already show a later one).
    const at = this.env.raft.appliedIndex(fragmentId('fs', fragment))
    const r = this.reader(fragment).read(ops)
    return local ? { ...r, stale, local, at } : { ...r, stale, at }
  }

  /**
   * Whether this host's replica of g may serve reads: it is open, it is a
   * voter of its own configuration, and the catalog lists it. A learner may
   * still be catching up (even empty) and must never answer a stale read;
   * a replica that was moved away may stay open for a while but no longer
   * receives the log, so it must not answer either (ReadIndex would never
   * complete on it, and a stale answer from it would be wrong without any
   * partition). Such hosts read like hosts without a replica.
   */
  localUsable (g: string): boolean {
    if (!this.env.hasGroup(g)) return false
    // A paused replica (full disk) would only answer stale after staleAfterMs.
    if (this.env.noRoom?.() != null) return false
    if (!this.env.replicas(g).includes(this.env.self)) return false
    return this.isVoterHere(g)
  }

  /** Whether this host holds a replica of g that is a voter of its own configuration. */
  private isVoterHere (g: string): boolean {
    if (!this.env.hasGroup(g)) return false
    try {
      return this.env.raft.status(g).config.voters.includes(this.env.raft.id)
    } catch {
      return false
    }
  }

  /** A read from another replica host (`tables.read`); `freshOnly` ignores answers that are stale there too. */
  private async readRemote (fragment: number, ops: ReadOp[], waitMs: number, freshOnly: boolean): Promise<{ read?: RoutedRead, last: string }> {
    const g = fragmentId('fs', fragment)
    const deadline = Date.now() + waitMs
    let last = 'no replica host is known'
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const hosts = this.candidates(fragment, g).filter((h) => h !== this.env.self && (this.env.linked?.(h) ?? true))
      const host = hosts[attempt % Math.max(1, hosts.length)]
      if (host === undefined) last = 'no replica host is reachable'
      else {
        try {
          const r = await this.env.call(host, 'tables.read', { fragment, ops }, this.callDeadline(deadline)) as Reply
          if (r.ok && !(freshOnly && (r.result as RoutedRead).stale)) return { read: withoutAt(r.result as RoutedRead), last }
          last = r.ok ? `${host}: its replica is stale too` : `${host}: ${r.message}`
        } catch (e) {
          last = `${host}: ${(e as Error).message}`
        }
      }
      await this.backoff(attempt, deadline)
    }
    return { last }
  }

  private reader (fragment: number): FragmentReader {
    let r = this.readers.get(fragment)
    if (!r) this.readers.set(fragment, r = new FragmentReader(this.store.rowsDb, fragment))
    return r
  }

  /**
   * A read of this host's replica after a ReadIndex round (see read()).
   * With `seen` (recheck), a fragment whose change mark shows nothing
   * changed after that index is not read: the answer is `unchanged`.
   */
  private async readHere (fragment: number, ops: ReadOp[], seen?: number): Promise<RoutedRead & { unchanged?: true }> {
    const g = fragmentId('fs', fragment)
    if (!this.leaderless.has(fragment)) {
      const deadline = Date.now() + this.o.staleAfterMs
      for (let attempt = 0; Date.now() < deadline; attempt++) {
        if (await this.readIndex(g, deadline - Date.now())) {
          if (seen !== undefined && this.marks?.unchangedSince(fragment, seen) === true) {
            this.unchangedChecks++
            return { results: [], intents: [], stale: false, unchanged: true }
          }
          return this.readReplica(fragment, ops, false, false)
        }
        await this.backoff(attempt, deadline)
      }
      // No ReadIndex here: maybe this replica is cut off, maybe only its view of the leader is
      // out of date. Another replica that can still read fresh wins over a stale answer.
      const remote = await this.readRemote(fragment, ops, this.o.staleAfterMs, true)
      if (remote.read) return remote.read
      this.leaderless.add(fragment)
      this.probe(fragment)
    }
    this.staleCounts.set(fragment, (this.staleCounts.get(fragment) ?? 0) + 1)
    return this.readReplica(fragment, ops, true, false)
  }

  /** Whether a ReadIndex round of group g completed within `ms`. */
  private async readIndex (g: string, ms: number): Promise<boolean> {
    if (ms <= 0) return false
    // By lease, at once: no promise, no timer.
    if (this.env.raft.readNow(g)) return true
    return await withDeadline(this.env.raft.read(g).then(() => true, () => false), ms, false)
  }

  /** One background loop per leaderless fragment, until a ReadIndex succeeds again. */
  private probe (fragment: number): void {
    if (this.probing.has(fragment)) return
    this.probing.add(fragment)
    const g = fragmentId('fs', fragment)
    void (async () => {
      try {
        while (!this.closed && this.env.hasGroup(g)) {
          if (await this.readIndex(g, this.o.staleAfterMs)) break
          await sleep(this.o.staleAfterMs / 4)
        }
      } finally {
        this.leaderless.delete(fragment)
        this.probing.delete(fragment)
      }
    })()
  }

  private async serveRead (p: unknown): Promise<Reply> {
    const { fragment, ops } = (p ?? {}) as { fragment?: unknown, ops?: unknown }
    if (!Number.isInteger(fragment) || !Array.isArray(ops)) return { ok: false, code: 'EINVAL', message: 'malformed tables.read request' }
    if (!this.localUsable(fragmentId('fs', fragment as number))) return { ok: false, code: 'NO_GROUP', message: `host ${this.env.self} holds no voting replica of fragment ${String(fragment)}` }
    try {
      // `at` is this host's log position; change marks are per host, so the caller gets none.
      return { ok: true, result: withoutAt(await this.readHere(fragment as number, ops as ReadOp[])) }
    } catch (e) {
      return { ok: false, code: 'EINVAL', message: (e as Error).message }
    }
  }

  // ---- proposals -----------------------------------------------------------------

  async propose (fragment: number, cmd: Command): Promise<Result> {
    const g = fragmentId('fs', fragment)
    const startsWrite = cmd.op === 'commit1' || cmd.op === 'prepare' || cmd.op === 'commitDecide'
    const full = this.env.noRoom?.(startsWrite) ?? null
    // Writes started here stop at once; steps of commits already under way finish elsewhere.
    if (full !== null && startsWrite) throw new RouterError('ENOSPC', full)
    const data = Buffer.from(FragmentMachine.encode(cmd))
    const wait = this.env.quorumWaitMs()
    const deadline = Date.now() + wait
    let last = 'no replica host is known'
    for (let attempt = 0; ; attempt++) {
      const hosts = this.candidates(fragment, g).filter((h) => full === null || h !== this.env.self)
      const host = hosts[attempt % Math.max(1, hosts.length)]
      let reply: Reply | undefined
      if (host === this.env.self) {
        // A leader cut off from its followers holds a proposal until the host's own timeout; quorumWait bounds the wait.
        reply = await withDeadline(this.proposeHere(g, data), deadline - Date.now(),
          { ok: false, code: 'UNKNOWN', message: `no majority acknowledged the proposal to ${g} in time` })
      } else if (host !== undefined && !(this.env.linked?.(host) ?? true)) {
        reply = { ok: false, code: 'LINK', message: `no link to ${host}` }
      } else if (host !== undefined) {
        try {
          reply = await this.env.call(host, 'tables.propose', { fragment, data }, this.callDeadline(deadline)) as Reply
        } catch (e) {
          reply = { ok: false, code: 'LINK', message: (e as Error).message }
        }
      }
      if (reply?.ok) {
        if (host !== undefined) this.leaderCache.set(fragment, host)
        if (typeof reply.index === 'number' && reply.index > (this.wrote.get(fragment) ?? 0)) this.wrote.set(fragment, reply.index)
        return reply.result as Result
      }
      if (reply) {
        last = `${host ?? '?'}: ${reply.message}`
        if (!RETRY_CODES.has(reply.code)) throw new RouterError(reply.code === 'ENOSPC' ? 'ENOSPC' : 'EIO', `fragment ${fragment}: ${reply.message}`)
        if (reply.leader && reply.leader !== host) this.leaderCache.set(fragment, reply.leader)
        else if (this.leaderCache.get(fragment) === host) this.leaderCache.delete(fragment)
      }
      if (Date.now() >= deadline) break
      await this.backoff(attempt, deadline)
    }
    throw new RouterError('EROFS', `fragment ${fragment} is read-only here: no majority of its replicas is reachable (waited ${wait} ms; last: ${last}). ` +
      'Writes resume by themselves when the network heals; reads are served, possibly stale.')
  }

  private async proposeHere (g: string, data: Buffer): Promise<Reply> {
    if (!this.env.hasGroup(g)) return { ok: false, code: 'NO_GROUP', message: `host ${this.env.self} holds no replica of ${g}` }
    try {
      const { result, index } = await this.env.raft.proposeIndexed(g, data)
      return { ok: true, result, index }
    } catch (e) {
      if (e instanceof RaftError) {
        const leader = e.leader ? this.env.hostOfNode(e.leader) : undefined
        return { ok: false, code: e.code, message: e.message, ...(leader ? { leader } : {}) }
      }
      const code = (e as { code?: unknown }).code
      const message = (e as Error).message
      // A host whose store filled up stops (host.ts); its message names the cause.
      if (code === 'ENOSPC' || /ENOSPC|No space left|MDB_MAP_FULL/.test(message)) return { ok: false, code: 'ENOSPC', message }
      // The group closed or moved under us: another host may hold it now.
      return { ok: false, code: 'NO_GROUP', message }
    }
  }

  private async serveProposal (p: unknown): Promise<Reply> {
    const { fragment, data } = (p ?? {}) as { fragment?: unknown, data?: unknown }
    if (!Number.isInteger(fragment) || !(data instanceof Uint8Array)) return { ok: false, code: 'EINVAL', message: 'malformed tables.propose request' }
    const g = fragmentId('fs', fragment as number)
    if (!this.env.hasGroup(g)) return { ok: false, code: 'NO_GROUP', message: `host ${this.env.self} holds no replica of ${g}` }
    // It may still think it leads (a paused host does not step down): the caller must try the others.
    const full = this.env.noRoom?.() ?? null
    if (full !== null) return { ok: false, code: 'NOT_LEADER', message: full }
    const st = this.env.raft.status(g)
    if (st.role !== 'leader') {
      const leader = st.lead ? this.env.hostOfNode(st.lead) : undefined
      return { ok: false, code: 'NOT_LEADER', message: leader ? `host ${leader} leads ${g}` : `${g} has no leader right now`, ...(leader ? { leader } : {}) }
    }
    return await this.proposeHere(g, Buffer.from(data))
  }

  // ---- host choice ---------------------------------------------------------------

  /** Hosts to try, best first: this host if it leads, the known leader, the hint, then every replica. */
  private candidates (fragment: number, g: string): string[] {
    const out: string[] = []
    const add = (h: string | null | undefined): void => { if (h && !out.includes(h)) out.push(h) }
    if (this.env.hasGroup(g)) {
      const st = this.env.raft.status(g)
      if (st.role === 'leader') add(this.env.self)
      else if (st.lead) add(this.env.hostOfNode(st.lead))
    }
    add(this.leaderCache.get(fragment))
    add(this.env.leaderHint(g))
    for (const h of this.env.replicas(g)) add(h)
    return out
  }

  /**
   * One RPC gets at most a quarter of quorumWait, so that a dead host (still
   * named leader until the others notice) cannot use up the whole wait;
   * a slow answer is simply retried, which the machine's dedupe makes safe.
   */
  private callDeadline (deadline: number): number {
    const share = Math.max(100, Math.floor(this.env.quorumWaitMs() / 4))
    return Math.max(1, Math.min(this.o.callDeadlineMs, share, deadline - Date.now()))
  }

  private async backoff (attempt: number, deadline: number): Promise<void> {
    const base = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** Math.min(attempt, 10))
    const ms = Math.min(base * (0.5 + Math.random()), Math.max(0, deadline - Date.now()))
    if (ms > 0) await sleep(ms)
  }
}
