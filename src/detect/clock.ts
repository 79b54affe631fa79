// Wall-clock ticks for the live daemon, expressed in packet time. The
// detector never reads a clock: the daemon supplies `now` (its mapping from
// wall time to the capture timestamps' clock) and feeds the ticks to
// runDetector, so closes happen on time even when no packets arrive.
import { Observable } from 'rxjs';

export interface LiveTicksOptions {
  /** Current time on the packet clock (ms since epoch, as Frame.time). */
  readonly now: () => number;
  /** The detector's next close deadline (detector.nextDeadline). */
  readonly nextDeadline: () => number | undefined;
  /**
   * Longest wait between ticks, ms (default 1000). An access opened after the
   * timer was set is closed exactly on time when its durationMs is at least
   * this long (the pending tick fires first and re-arms for its deadline);
   * shorter accesses close at most this late. Also bounds how long stale
   * sequence state lingers without traffic.
   */
  readonly maxIntervalMs?: number;
}

// setTimeout treats delays above 2^31-1 ms as 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Emits now() at the next close deadline or after maxIntervalMs, whichever is
 * first, then reschedules. Timers are unref'd: ticks never keep the process alive.
 */
export function liveTicks(options: LiveTicksOptions): Observable<number> {
  const maxIntervalMs = options.maxIntervalMs ?? 1000;
  if (!Number.isFinite(maxIntervalMs) || maxIntervalMs < 1 || maxIntervalMs > MAX_TIMER_MS) {
    throw new RangeError(`liveTicks: maxIntervalMs must be 1-${MAX_TIMER_MS}, got ${String(maxIntervalMs)}`);
  }
  return new Observable<number>((subscriber) => {
    let timer: NodeJS.Timeout | undefined;
    const schedule = (): void => {
      const now = options.now();
      const deadline = options.nextDeadline();
      const wait = deadline === undefined ? maxIntervalMs : Math.min(maxIntervalMs, deadline - now);
      // At least 1 ms: a deadline that is already due must not spin the loop.
      timer = setTimeout(fire, Math.max(1, Math.ceil(wait)));
      timer.unref();
    };
    const fire = (): void => {
      subscriber.next(options.now());
      if (!subscriber.closed) schedule();
    };
    schedule();
    return () => clearTimeout(timer);
  });
}
