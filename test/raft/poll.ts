/** Polls until `pred` holds; gives up after `maxWaits` polls of 10 ms (a bound, not a timing assertion). */
export async function pollUntil (pred: () => boolean, what: string, maxWaits: number): Promise<void> {
  for (let i = 0; i < maxWaits; i++) {
    if (pred()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`gave up waiting for ${what}`)
}
