/**
 * Reconnect delays (pure): exponential growth with jitter, so that hosts
 * that lost each other at the same moment do not all redial in lockstep.
 * The delay for attempt n is uniform in [cap/2, cap], cap = min(max, base·2ⁿ).
 */
export interface BackoffSettings { baseMs: number, maxMs: number }

export function backoffDelay (attempt: number, s: BackoffSettings, random: () => number = Math.random): number {
  const cap = Math.min(s.maxMs, s.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(cap / 2 + random() * cap / 2)
}
