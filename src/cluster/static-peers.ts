/**
 * Static peers for networks without multicast: a fixed list (`peers=`) and
 * a command that prints the expected hosts (`peers_cmd=`, like a cloud
 * inventory), one "host:port" per line or separated by commas/spaces.
 *
 * Promises: a bad entry is rejected with a message naming it; the command
 * runs with a timeout and a cap on its output, is re-run every
 * `refreshMs`, and its failure is logged without stopping the host (the
 * addresses it gave before stay known).
 */
import { execFile } from 'node:child_process'
import { parseAddr } from '../wire/wire.js'

export function parsePeerList (text: string): string[] {
  const out: string[] = []
  for (const item of text.replace(/#.*/g, '').split(/[\s,]+/)) {
    if (item === '') continue
    try { parseAddr(item) } catch {
      throw new Error(`peer ${JSON.stringify(item)} is not host:port`)
    }
    if (!out.includes(item)) out.push(item)
  }
  return out
}

export function runPeersCmd (cmd: string, timeoutMs = 10_000, maxBytes = 64 * 1024): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', cmd], { timeout: timeoutMs, maxBuffer: maxBytes, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`peers_cmd ${JSON.stringify(cmd)} failed: ${err.killed ? `no answer within ${timeoutMs} ms` : err.message.split('\n')[0]}` +
          (stderr ? ` (${String(stderr).trim().slice(0, 200)})` : '')))
        return
      }
      try { resolve(parsePeerList(String(stdout))) } catch (e) {
        reject(new Error(`peers_cmd ${JSON.stringify(cmd)} printed a bad line: ${(e as Error).message}`))
      }
    })
  })
}

/** Feeds static and command-given addresses to `add`, refreshing the command's list. */
export class StaticPeers {
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  constructor (private readonly o: { peers: string[], cmd?: string, refreshMs?: number, add: (addr: string) => void, log: (l: string) => void }) {}

  start (): void {
    for (const a of this.o.peers) this.o.add(a)
    if (this.o.cmd) void this.refresh()
  }

  stop (): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  private async refresh (): Promise<void> {
    try {
      for (const a of await runPeersCmd(this.o.cmd!)) this.o.add(a)
    } catch (err) {
      this.o.log(`walkenfs: ${(err as Error).message}`)
    }
    if (!this.stopped) this.timer = setTimeout(() => { void this.refresh() }, this.o.refreshMs ?? 30_000)
  }
}
