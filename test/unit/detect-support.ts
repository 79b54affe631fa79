// Helpers for detector tests: build KnockEvents directly and render decisions
// as short strings so expectations read like the log they stand for.
import type { Decision, Door, KnockEvent, PortSpec, Protocol, SequenceDoor } from '../../src/types.js';
import { createDetector, type Detector, type DetectorOptions } from '../../src/detect/detector.js';

const EMPTY = new Uint8Array(0);

export function knock(source: string, port: number, time: number, protocol: Protocol = 'tcp'): KnockEvent {
  return {
    time,
    family: source.includes(':') ? 6 : 4,
    source,
    destination: source.includes(':') ? 'fd00:6b77::1' : '10.199.0.1',
    protocol,
    sourcePort: 40000,
    port,
    tcpFlags: protocol === 'tcp' ? 0x02 : 0,
    payload: EMPTY,
  };
}

/** A knock from a fixed test source, for feeding one matcher directly. */
export function knockAt(port: number, time: number, protocol: Protocol = 'tcp'): KnockEvent {
  return knock('192.0.2.7', port, time, protocol);
}

export function tcp(...ports: number[]): PortSpec[] {
  return ports.map((port) => ({ port, protocol: 'tcp' }));
}

export function door(overrides: Partial<Omit<SequenceDoor, 'kind'>> = {}): SequenceDoor {
  return {
    kind: 'sequence',
    name: 'ssh',
    sequence: tcp(1234, 5678, 9012),
    windowMs: 10_000,
    open: tcp(22),
    durationMs: 30_000,
    ...overrides,
  };
}

/** One decision as a line: `time type door source details`. */
export function show(d: Decision): string {
  const head = `${d.time} ${d.type} ${d.door} ${d.source}`;
  switch (d.type) {
    case 'knock':
      return `${head} ${d.port}/${d.protocol}`;
    case 'progress':
      return `${head} ${d.step}/${d.of}`;
    case 'reset':
      return `${head} ${d.reason} ${d.step}${d.port === undefined ? '' : ` ${d.port}/${d.protocol}`}`;
    case 'open':
      return `${head} until=${d.until}${d.refreshed ? ' refreshed' : ''}`;
    case 'close':
      return `${head} ${d.reason}`;
    case 'reject':
      return `${head} ${d.reason}`;
  }
}

export interface Run {
  readonly detector: Detector;
  readonly decisions: Decision[];
  readonly lines: string[];
}

/** Feeds events to a fresh detector; finish() unless told not to. */
export function run(doors: readonly Door[], events: readonly KnockEvent[], options: DetectorOptions & { finish?: boolean } = {}): Run {
  const detector = createDetector(doors, options);
  const decisions: Decision[] = [];
  const emit = (d: Decision): void => {
    decisions.push(d);
  };
  for (const ev of events) detector.onKnock(ev, emit);
  if (options.finish !== false) detector.finish(emit);
  return { detector, decisions, lines: decisions.map(show) };
}

/** Lines of one type only. */
export function only(lines: readonly string[], type: Decision['type']): string[] {
  return lines.filter((l) => l.split(' ')[1] === type);
}

/** Knocks on `ports` from one source, `stepMs` apart starting at `t0`. */
export function series(source: string, ports: readonly number[], t0: number, stepMs: number, protocol: Protocol = 'tcp'): KnockEvent[] {
  return ports.map((p, i) => knock(source, p, t0 + i * stepMs, protocol));
}

export function range(from: number, to: number): number[] {
  const out: number[] = [];
  const step = from <= to ? 1 : -1;
  for (let p = from; p !== to + step; p += step) out.push(p);
  return out;
}
