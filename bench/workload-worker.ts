/**
 * Runs the fixed workload (workload.ts) in a worker thread, so that the
 * main thread stays free: it may be serving the FUSE mount under test (the
 * in-memory ceiling) or handling Ctrl-C. workerData: { dir, opts };
 * posts { progress: Figure } per step as it goes, then { figures }.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { runWorkload, type WorkloadOptions } from './workload.js'

const { dir, opts } = workerData as { dir: string, opts: WorkloadOptions }
const figures = runWorkload(dir, opts, (f) => parentPort!.postMessage({ progress: f }))
parentPort!.postMessage({ figures })
