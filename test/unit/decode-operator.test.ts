import { describe, expect, it } from 'vitest';
import { from, Subject, firstValueFrom, toArray } from 'rxjs';
import { createDecodeStats } from '../../src/decode/decode.js';
import { decodeFrames } from '../../src/decode/operator.js';
import { LinkType } from '../../src/decode/link-types.js';
import { ethernet, tcp, tcpSyn, TcpFlag, toFrame, udp } from '../../src/lab/packets.js';
import type { Frame, KnockEvent } from '../../src/types.js';

const f = (data: Uint8Array, time: number): Frame => toFrame(data, LinkType.ETHERNET, time);

describe('decodeFrames operator', () => {
  it('emits knocks in order, drops the rest, and counts everything', async () => {
    const frames = [
      f(ethernet(tcpSyn({ src: '10.0.0.1', dst: '10.0.0.9', sport: 1000, dport: 1234 })), 1),
      f(ethernet(tcp({ src: '10.0.0.1', dst: '10.0.0.9', sport: 1000, dport: 22, flags: TcpFlag.ACK })), 2),
      f(new Uint8Array(5), 3),
      f(ethernet(udp({ src: 'fd00::1', dst: 'fd00::9', sport: 1001, dport: 5678, payload: 'x' })), 4),
    ];
    const stats = createDecodeStats();
    const events = await firstValueFrom(from(frames).pipe(decodeFrames(stats), toArray()));
    expect(events.map((e) => [e.time, e.source, e.port, e.protocol])).toEqual([
      [1, '10.0.0.1', 1234, 'tcp'],
      [4, 'fd00::1', 5678, 'udp'],
    ]);
    expect(stats).toMatchObject({ frames: 4, knocks: 2, ignored: 1, malformed: 1 });
  });

  it('passes errors and completion through, and unsubscribes from its source', () => {
    const source = new Subject<Frame>();
    const seen: KnockEvent[] = [];
    let error: unknown;
    const sub = source.pipe(decodeFrames(createDecodeStats())).subscribe({ next: (e) => seen.push(e), error: (e: unknown) => (error = e) });
    source.next(f(ethernet(tcpSyn({ src: '10.0.0.1', dst: '10.0.0.9', sport: 1, dport: 2 })), 1));
    expect(seen).toHaveLength(1);
    const boom = new Error('capture failed');
    source.error(boom);
    expect(error).toBe(boom);
    expect(sub.closed).toBe(true);

    const live = new Subject<Frame>();
    let completed = false;
    live.pipe(decodeFrames(createDecodeStats())).subscribe({ complete: () => (completed = true) });
    live.complete();
    expect(completed).toBe(true);

    const held = new Subject<Frame>();
    const s2 = held.pipe(decodeFrames(createDecodeStats())).subscribe();
    expect(held.observed).toBe(true);
    s2.unsubscribe();
    expect(held.observed).toBe(false);
  });
});
