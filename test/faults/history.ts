/**
 * The operation log the torture clients write and the checkers read: one
 * JSON object per line, written by the client after the operation ended.
 * Times are wall-clock milliseconds (Date.now()), shared by every process
 * of the host, so histories of different clients compare.
 *
 * `outcome` says what the client knows: 'ok' (acknowledged), 'fail' (the
 * operation certainly did not happen — only for reads, which change
 * nothing) or 'unknown' (a write whose call failed or was cut off: it may
 * or may not have taken effect, e.g. ENOTCONN after kill -9, ENOSPC from
 * fsync).
 */
import { readFileSync } from 'node:fs'

export type OpKind = 'reg-write' | 'reg-read' | 'append' | 'read-all' | 'create' | 'rename' | 'unlink'

export interface Op {
  client: number
  kind: OpKind
  /** register / append file name, or the directory entity id for create/rename/unlink */
  key: string
  /** reg-write: value written; reg-read: value read ('' = never written); append: record; read-all: content read */
  value: string
  invoke: number
  response: number
  outcome: 'ok' | 'fail' | 'unknown'
  /** errno code when the call failed */
  err?: string
}

export function formatOp (op: Op): string {
  return JSON.stringify(op) + '\n'
}

/** Reads one client log; a torn last line (the client died mid-write) is left out. */
export function readHistory (file: string): Op[] {
  const ops: Op[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    try { ops.push(JSON.parse(line) as Op) } catch { /* torn tail */ }
  }
  return ops
}

/** The system clock, read at each call: every process reads the same clock (performance.timeOrigin is fixed per process and may be off by milliseconds). Equal times count as concurrent. */
export function now (): number {
  return Date.now()
}

/** The operations of clients 0..n-1, logged as `dir/client<c>.log` (a client that logged nothing has none). */
export function readClientLogs (dir: string, clients: number): Op[] {
  const ops: Op[] = []
  for (let c = 0; c < clients; c++) {
    try { ops.push(...readHistory(`${dir}/client${c}.log`)) } catch { /* a client that logged nothing */ }
  }
  return ops
}
