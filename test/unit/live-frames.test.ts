// liveFrames: reopening the capture as the interface changes, with the
// interface states and the capture itself replaced by fakes.
import { describe, expect, it, vi } from 'vitest';
import { Observable, Subject, type Subscriber } from 'rxjs';
import { liveFrames } from '../../src/capture/live-frames.js';
import { LiveCaptureError, type LiveCaptureOptions } from '../../src/capture/live.js';
import type { InterfaceState } from '../../src/capture/interfaces.js';
import type { Frame, Protocol } from '../../src/types.js';

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];

interface FakeCapture {
  readonly options: LiveCaptureOptions;
  readonly subscriber: Subscriber<Frame>;
  closes: number;
}

function setup(extra: { retryDelayMs?: number } = {}) {
  const states = new Subject<InterfaceState>();
  const captures: FakeCapture[] = [];
  const open = (options: LiveCaptureOptions): Observable<Frame> =>
    new Observable<Frame>((subscriber) => {
      const c: FakeCapture = { options, subscriber, closes: 0 };
      captures.push(c);
      return () => {
        c.closes += 1;
      };
    });
  const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
  const frames: Frame[] = [];
  let error: unknown;
  let completed = false;
  const sub = liveFrames({ interface: 'kw0', protocols: PROTOCOLS, states, open, logger, retryDelayMs: extra.retryDelayMs ?? 5 }).subscribe({
    next: (f) => frames.push(f),
    error: (e) => (error = e),
    complete: () => (completed = true),
  });
  return {
    states,
    captures,
    logger,
    frames,
    sub,
    error: () => error,
    completed: () => completed,
    messages: (level: 'info' | 'warn') => logger[level].mock.calls.map((c) => c[1] as string),
  };
}

const frame = (time: number): Frame => ({ time, linkType: 1, data: new Uint8Array([1]), origLength: 1, offset: -1 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const UP = (addresses: string[], ifindex = 2): InterfaceState => ({ addresses, up: true, ifindex });

describe('liveFrames', () => {
  it('opens a capture with a filter without host addresses and passes frames on', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1', 'fd00::1']));
    expect(t.captures).toHaveLength(1);
    const o = t.captures[0].options;
    expect(o.interface).toBe('kw0');
    expect(o.filter).not.toContain('10.0.0.1');
    expect(o.filter).toContain('tcp[tcpflags]');
    expect(o.filter).toContain('udp');
    t.captures[0].subscriber.next(frame(1));
    t.captures[0].subscriber.next(frame(2));
    expect(t.frames.map((f) => f.time)).toEqual([1, 2]);
    expect(t.messages('info')).toContain('opening live capture');
    t.sub.unsubscribe();
    expect(t.captures[0].closes).toBe(1);
  });

  it('never reopens when addresses come and go (issue 8 item 7: 47 restarts in 15 s lost knocks)', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1']));
    for (let i = 0; i < 50; i++) t.states.next(UP(['10.0.0.1', `2001:db8:${i.toString(16)}::1`]));
    t.states.next(UP([]));
    t.states.next(UP(['10.0.0.2']));
    expect(t.captures).toHaveLength(1);
    expect(t.captures[0].closes).toBe(0);
    t.captures[0].subscriber.next(frame(3));
    expect(t.frames.map((f) => f.time)).toEqual([3]);
    expect(t.messages('info')).not.toContain('reopening live capture');
    t.sub.unsubscribe();
    expect(t.captures[0].closes).toBe(1);
  });

  it('does not reopen when nothing that matters changed', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1']));
    t.states.next(UP(['10.0.0.1']));
    expect(t.captures).toHaveLength(1);
    expect(t.captures[0].closes).toBe(0);
    t.sub.unsubscribe();
  });

  it('stops on link down, stays stopped, and reopens on link up', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1']));
    t.states.next({ addresses: [], up: false, ifindex: 2 });
    expect(t.captures[0].closes).toBe(1);
    expect(t.captures).toHaveLength(1);
    expect(t.messages('warn')).toContain('live capture paused: link down');
    t.states.next(UP(['10.0.0.1']));
    expect(t.captures).toHaveLength(2);
    const last = t.logger.info.mock.calls.filter((c) => c[1] === 'reopening live capture').pop();
    expect(last?.[0]).toMatchObject({ reason: 'link up', interface: 'kw0' });
    expect(t.completed()).toBe(false);
    t.sub.unsubscribe();
  });

  it('reopens when the interface is re-created with a new index', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1'], 2));
    t.states.next(UP(['10.0.0.1'], 9));
    expect(t.captures).toHaveLength(2);
    expect(t.logger.info.mock.calls.some((c) => (c[0] as { reason?: string }).reason === 'interface re-created')).toBe(true);
    t.sub.unsubscribe();
  });

  it('waits without a capture while the interface is missing, and captures once it is up even without an address', () => {
    const t = setup();
    t.states.next({ addresses: [], up: false });
    expect(t.captures).toHaveLength(0);
    expect(t.messages('warn')).toEqual(['live capture paused: interface not found']);
    // Knocks to another interface's address can arrive here (the host accepts them).
    t.states.next({ addresses: [], up: true, ifindex: 3 });
    expect(t.captures).toHaveLength(1);
    t.states.next(UP(['10.0.0.1'], 3));
    expect(t.captures).toHaveLength(1);
    t.sub.unsubscribe();
  });

  it('retries a capture that died, with growing delays, and resets after frames flow', async () => {
    const t = setup({ retryDelayMs: 5 });
    t.states.next(UP(['10.0.0.1']));
    t.captures[0].subscriber.error(new LiveCaptureError('the capture process was killed by SIGABRT', 'died', 'kw0'));
    await sleep(30);
    expect(t.captures).toHaveLength(2);
    t.captures[1].subscriber.error(new LiveCaptureError('That device is not up', 'not-up', 'kw0'));
    await sleep(40);
    expect(t.captures).toHaveLength(3);
    const delays = t.logger.warn.mock.calls.filter((c) => c[1] === 'live capture failed; retrying').map((c) => (c[0] as { retryInMs: number }).retryInMs);
    expect(delays).toEqual([5, 10]);
    t.captures[2].subscriber.next(frame(7));
    t.captures[2].subscriber.error(new LiveCaptureError('gone', 'died', 'kw0'));
    await sleep(30);
    const after = t.logger.warn.mock.calls.filter((c) => c[1] === 'live capture failed; retrying').map((c) => (c[0] as { retryInMs: number }).retryInMs);
    expect(after).toEqual([5, 10, 5]);
    expect(t.frames.map((f) => f.time)).toEqual([7]);
    expect(t.error()).toBeUndefined();
    t.sub.unsubscribe();
  });

  it('errors on a capture error retrying cannot fix', () => {
    const t = setup();
    t.states.next(UP(['10.0.0.1']));
    const fatal = new LiveCaptureError('socket: Operation not permitted', 'permission', 'kw0');
    t.captures[0].subscriber.error(fatal);
    expect(t.error()).toBe(fatal);
    expect(t.states.observed).toBe(false); // stopped following the interface
  });

  it('errors at subscription when there is nothing to capture', () => {
    let error: unknown;
    liveFrames({ interface: 'kw0', protocols: [], states: new Subject<InterfaceState>(), open: () => new Observable<Frame>() }).subscribe({
      error: (e) => (error = e),
    });
    expect(String(error)).toMatch(/no protocol to capture/);
  });
});
