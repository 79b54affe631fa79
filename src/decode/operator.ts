// RxJS stage: Frame -> KnockEvent, dropping frames that carry no knock.
// One hand-written operator rather than map + filter: this sees every packet,
// so it costs a single function call per frame.
import { Observable, type OperatorFunction } from 'rxjs';
import type { Frame, KnockEvent } from '../types.js';
import { decodeFrame, type DecodeStats } from './decode.js';

export function decodeFrames(stats: DecodeStats): OperatorFunction<Frame, KnockEvent> {
  return (source: Observable<Frame>): Observable<KnockEvent> =>
    new Observable<KnockEvent>((subscriber) =>
      source.subscribe({
        next(frame: Frame): void {
          const event = decodeFrame(frame, stats);
          if (event !== undefined) subscriber.next(event);
        },
        error: (err: unknown): void => subscriber.error(err),
        complete: (): void => subscriber.complete(),
      }),
    );
}
