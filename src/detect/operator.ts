// RxJS plumbing around the detector. RxJS only carries events; all state lives
// in the detector's Map (per-source groupBy groups leak, and virtual-time
// schedulers are far too slow for replay speed).
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { Decision, Door, KnockEvent } from '../types.js';
import { createDetector, type Detector, type DetectorOptions, type Emit } from './detector.js';

export interface RunDetectorOptions {
  /**
   * Packet-time clock values (e.g. from liveTicks) that call advanceTo, so
   * closes happen on time without traffic. Their errors end the stream.
   */
  readonly ticks?: Observable<number>;
}

export interface DetectKnocksOptions extends DetectorOptions, RunDetectorOptions {}

/**
 * Feeds KnockEvents through an existing detector (the daemon keeps the
 * instance for stats, openAccesses() and shutdown()). When the source
 * completes, finish() emits the pending closes at their deadlines and the
 * output completes. An error thrown by the detector errors the output.
 */
export function runDetector(detector: Detector, options: RunDetectorOptions = {}): OperatorFunction<KnockEvent, Decision> {
  return (source: Observable<KnockEvent>): Observable<Decision> =>
    new Observable<Decision>((subscriber) => {
      const emit: Emit = (d) => subscriber.next(d);
      let ticks: Subscription | undefined;
      const fail = (err: unknown): void => {
        ticks?.unsubscribe();
        subscriber.error(err);
      };
      if (options.ticks) {
        ticks = options.ticks.subscribe({
          next: (time) => {
            try {
              detector.advanceTo(time, emit);
            } catch (err) {
              fail(err);
            }
          },
          error: fail,
        });
      }
      const input = source.subscribe({
        next: (ev) => {
          try {
            detector.onKnock(ev, emit);
          } catch (err) {
            fail(err);
          }
        },
        error: fail,
        complete: () => {
          ticks?.unsubscribe();
          try {
            detector.finish(emit);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          subscriber.complete();
        },
      });
      return () => {
        input.unsubscribe();
        ticks?.unsubscribe();
      };
    });
}

/** KnockEvent -> Decision with a fresh detector per subscription. */
export function detectKnocks(doors: readonly Door[], options: DetectKnocksOptions = {}): OperatorFunction<KnockEvent, Decision> {
  // Validate the doors now, at pipeline construction, not at first subscription.
  createDetector(doors, options);
  return (source: Observable<KnockEvent>): Observable<Decision> =>
    new Observable<Decision>((subscriber) =>
      source.pipe(runDetector(createDetector(doors, options), options)).subscribe(subscriber),
    );
}
