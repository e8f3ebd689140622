/**
 * Runs the fixed workload (workload.ts) in a worker thread, so that the
 * main thread stays free: it may be serving the FUSE mount under test (the
 * in-memory ceiling) or handling Ctrl-C. workerData: { dir, opts };
 * posts { progress: Figure } per step as it goes, then { figures }. With a
 * `gate` (SharedArrayBuffer), it waits after each step until the main
 * thread sets it: time to sample the daemons' counters between steps.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { runWorkload, type WorkloadOptions } from './workload.js'

const { dir, opts, gate } = workerData as { dir: string, opts: WorkloadOptions, gate?: SharedArrayBuffer }
const g = gate !== undefined ? new Int32Array(gate) : null
let figures: unknown
try {
  figures = runWorkload(dir, opts, (f) => {
  if (g === null) { parentPort!.postMessage({ progress: f }); return }
  // Wait (outside the step's timing) until the main thread has sampled its counters.
  Atomics.store(g, 0, 0)
  parentPort!.postMessage({ progress: f })
  Atomics.wait(g, 0, 0, 30_000)
  })
} catch (e) {
  // an error's own text, whatever was thrown (a structured clone may lose it)
  parentPort!.postMessage({ error: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) })
  process.exit(1)
}
parentPort!.postMessage({ figures })
