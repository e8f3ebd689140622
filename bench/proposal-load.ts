/**
 * The proposal load both Raft benchmarks drive: `inflight` concurrent
 * proposers putting `n` values of `size` bytes through one leader, timed
 * from propose() to its resolution (committed by a quorum and applied).
 */
import type { RaftHost } from '../src/raft/host.js'
import { KvMachine } from '../test/raft/kv-machine.js'
import { percentile } from './stats.js'

export interface LoadResult { rate: number, p50: number, p99: number }

export async function proposalLoad (leader: RaftHost, inflight: number, n: number, size: number, g = 'g'): Promise<LoadResult> {
  // Let the leader commit its first entry before measuring.
  await leader.propose(g, KvMachine.encode('warm', 'up'))
  const value = 'x'.repeat(size)
  const lat: number[] = []
  let next = 0
  const t0 = process.hrtime.bigint()
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      const s = process.hrtime.bigint()
      await leader.propose(g, KvMachine.encode(`k${i % 1000}`, value))
      lat.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  return { rate: n / secs, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
}
