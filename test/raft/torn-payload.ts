/** The torn-write test's deterministic entry payload, shared by the writer and the checker. */
/** Deterministic payload, so the reader can verify every byte it gets back. */
export function payload (index: number, term: number): Uint8Array {
  const b = new Uint8Array(2048)
  for (let i = 0; i < b.length; i++) b[i] = (index * 31 + term * 7 + i) & 0xff
  return b
}

