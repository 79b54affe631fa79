// liveFrames and the interface's MAC (issue 8 item 13): the capture filter
// admits unicast frames only for the interface's own MAC, so the MAC comes
// from the interface state and a new MAC means a new filter (cap cannot
// replace the filter of an open capture). Fakes for the states and the capture.
import { describe, expect, it, vi } from 'vitest';
import { Observable, Subject } from 'rxjs';
import { linkClause } from '../../src/capture/filter.js';
import type { InterfaceState } from '../../src/capture/interfaces.js';
import type { LiveCaptureOptions } from '../../src/capture/live.js';
import { liveFrames } from '../../src/capture/live-frames.js';
import type { Frame } from '../../src/types.js';

const MAC_A = '02:4b:57:00:00:01';
const MAC_B = '02:4b:57:00:00:02';

function setup(name: string) {
  const states = new Subject<InterfaceState>();
  const opened: LiveCaptureOptions[] = [];
  const open = (options: LiveCaptureOptions): Observable<Frame> =>
    new Observable<Frame>(() => {
      opened.push(options);
    });
  const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const sub = liveFrames({ interface: name, protocols: ['tcp', 'udp'], states, open, logger }).subscribe();
  return { states, opened, logger, sub };
}

describe('liveFrames and the interface MAC', () => {
  it("puts the interface's MAC in the filter", () => {
    const t = setup('kw0');
    t.states.next({ addresses: ['10.0.0.1'], up: true, ifindex: 2, linkAddress: MAC_A });
    expect(t.opened).toHaveLength(1);
    expect(t.opened[0].filter.startsWith(`${linkClause(MAC_A)} and `)).toBe(true);
    t.sub.unsubscribe();
  });

  it('reopens with the new MAC when it changes, and only then', () => {
    const t = setup('kw0');
    t.states.next({ addresses: ['10.0.0.1'], up: true, ifindex: 2, linkAddress: MAC_A });
    t.states.next({ addresses: ['10.0.0.1', '10.0.0.2'], up: true, ifindex: 2, linkAddress: MAC_A });
    expect(t.opened).toHaveLength(1);
    t.states.next({ addresses: ['10.0.0.1', '10.0.0.2'], up: true, ifindex: 2, linkAddress: MAC_B });
    expect(t.opened).toHaveLength(2);
    expect(t.opened[1].filter).toContain(`ether dst ${MAC_B}`);
    expect(t.opened[1].filter).not.toContain(MAC_A);
    const reasons = t.logger.info.mock.calls.map((c) => (c[0] as { reason?: string }).reason);
    expect(reasons).toContain('MAC address changed');
    t.sub.unsubscribe();
  });

  it('has no link test on `any` (cooked frames: the decoder reads the packet type) or on a link without a MAC', () => {
    const any = setup('any');
    any.states.next({ addresses: ['10.0.0.1'], up: true });
    expect(any.opened[0].filter).not.toContain('ether');
    any.sub.unsubscribe();
    const tun = setup('tun0');
    tun.states.next({ addresses: ['10.0.0.1'], up: true, ifindex: 5 });
    expect(tun.opened[0].filter).not.toContain('ether');
    tun.sub.unsubscribe();
  });
});
