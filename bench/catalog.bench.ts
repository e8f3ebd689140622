/**
 * Catalog costs as it grows: encoded size, and the per-command cost of the
 * state machine path (copy, apply, encode the whole row), and of building
 * the placement planner's input. Figures only.
 */
import { applyCommand, emptyCatalog, encodeCatalog, toPlacementInput, type Catalog } from '../src/cluster/catalog.js'

function build (hosts: number, tables: number, fragments: number): Catalog {
  const c = emptyCatalog()
  const ids = Array.from({ length: hosts }, (_, i) => `h${String(i).padStart(3, '0')}`)
  const must = (r: ReturnType<typeof applyCommand>): void => { if (!r.ok) throw new Error(r.error) }
  must(applyCommand(c, { op: 'bootstrap', clusterId: 'bench', name: 'bench', host: { id: ids[0], addresses: ['10.77.0.1:7000'] }, at: 0 }))
  for (let i = 1; i < hosts; i++) must(applyCommand(c, { op: 'addHost', host: { id: ids[i], addresses: [`10.77.0.${i + 1}:7000`] }, at: i }))
  for (let t = 0; t < tables; t++) {
    must(applyCommand(c, { op: 'createTable', name: `t${t}`, fragments }))
    for (let f = 0; f < fragments; f++) {
      const reps = [0, 1, 2].map((k) => ({ host: ids[(t * fragments + f + k) % hosts], role: 'voter' as const }))
      must(applyCommand(c, { op: 'recordMembership', group: `t${t}/${f}`, replicas: reps, configIndex: 1 }))
    }
  }
  return c
}

function perOp (n: number, fn: (i: number) => void): number {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn(i)
  return Number(process.hrtime.bigint() - t0) / 1e3 / n
}

export async function run (_args: string[]): Promise<void> {
  console.log('hosts  groups  encoded (KiB)  machine apply+encode (µs/cmd)  placement input (µs)')
  for (const [hosts, tables, fragments] of [[5, 4, 64], [20, 8, 128], [50, 16, 192]]) {
    const c = build(hosts, tables, fragments)
    const size = encodeCatalog(c).length
    let idx = 2
    // What CatalogMachine.apply does for each accepted command.
    const apply = perOp(200, (i) => {
      applyCommand(c, { op: 'recordMembership', group: `t0/${i % fragments}`, replicas: [{ host: 'h000', role: 'voter' }, { host: 'h001', role: 'voter' }, { host: 'h002', role: 'voter' }], configIndex: idx++ })
      encodeCatalog(c)
    })
    const live = { now: 0, hosts: Object.fromEntries(c.hosts.map((h) => [h.id, { up: true }])) }
    const input = perOp(50, () => toPlacementInput(c, live))
    console.log(`${String(hosts).padStart(5)}  ${String(tables * fragments).padStart(6)}  ${(size / 1024).toFixed(1).padStart(13)}  ${apply.toFixed(0).padStart(29)}  ${input.toFixed(0).padStart(20)}`)
  }
}
