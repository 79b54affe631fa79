// Wall-clock time for live capture. cap gives no packet timestamps, so the
// capture stage stamps each packet when its handler runs (the one stage where
// wall time is legitimate). The clock is anchored once to the system clock and
// then advanced by the monotonic high-resolution clock: packet times never go
// backwards when NTP steps the system clock, and they keep sub-microsecond
// resolution instead of Date.now()'s whole milliseconds.

/** A clock returning milliseconds since the Unix epoch (fractional). */
export type Clock = () => number;

/** Millisecond edges of Date.now() sampled while anchoring. */
const ANCHOR_EDGES = 4;
/** Longest the anchoring may busy-wait, ns. */
const ANCHOR_BUDGET_NS = 20_000_000n;

/**
 * Makes a wall clock. The anchor is the instant Date.now() steps to a new
 * millisecond, bracketed by hrtime reads just before the last call that
 * still saw the old value and just after the first that saw the new one.
 * Of a few such edges, the tightest bracket wins: one where the thread was
 * preempted (seen here on a busy 2-core VM: anchors off by 0.6 ms) is
 * discarded. Busy-waits about ANCHOR_EDGES ms once.
 */
export function createWallClock(): Clock {
  const start = process.hrtime.bigint();
  let bestMs = Date.now();
  let bestNs = start;
  let bestWidth = -1n;
  let edges = 0;
  let previous = Date.now();
  let previousRead = process.hrtime.bigint(); // taken just before the Date.now() that returned `previous`
  for (;;) {
    const before = process.hrtime.bigint();
    const ms = Date.now();
    const after = process.hrtime.bigint();
    if (ms !== previous) {
      // The step to `ms` happened after the previous Date.now() call began and before this one ended.
      const width = after - previousRead;
      if (bestWidth < 0n || width < bestWidth) {
        bestWidth = width;
        bestMs = ms;
        bestNs = previousRead + width / 2n;
      }
      edges += 1;
      previous = ms;
    }
    previousRead = before;
    // A frozen Date (fake timers) must not hang us: keep the coarse anchor.
    if (edges >= ANCHOR_EDGES || after - start > ANCHOR_BUDGET_NS) break;
  }
  return () => bestMs + Number(process.hrtime.bigint() - bestNs) / 1e6;
}

let shared: Clock | undefined;

/** The process-wide wall clock, anchored on first use. */
export function wallClock(): number {
  shared ??= createWallClock();
  return shared();
}
