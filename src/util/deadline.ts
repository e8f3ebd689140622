/**
 * Waiting for a promise with a bound: `withDeadline(p, ms, otherwise)`.
 *
 * Promises: resolves with p's value if p settles within `ms` (p's rejection
 * rejects it), else with `otherwise`; p keeps running either way, and the
 * timer never outlives the wait (it is cleared, so it holds no process open).
 */
export async function withDeadline<T> (p: Promise<T>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<T>((resolve) => { timer = setTimeout(() => resolve(otherwise), Math.max(0, ms)) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}
