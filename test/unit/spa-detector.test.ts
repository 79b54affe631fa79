// The spa kind inside the detector (detect/spa.ts): what a datagram on the
// spa port does to the decisions, the source table and other doors
// (requirements 1 and 9), with the in-memory store replay uses.
import { describe, expect, it } from 'vitest';
import { createDetector } from '../../src/detect/index.js';
import { createMemorySpaStore } from '../../src/spa/store.js';
import type { Decision, KnockEvent, SequenceDoor, SpaDoor } from '../../src/types.js';
import { KEY_A, KEY_B, T0, datagram, user } from './spa-support.js';

const spaDoor = (name: string, over: Partial<SpaDoor> = {}): SpaDoor => ({
  kind: 'spa',
  name,
  port: 62201,
  totp: false,
  allowIp: 'source',
  maxAgeMs: 30_000,
  open: [{ port: 22, protocol: 'tcp' }],
  durationMs: 30_000,
  ...over,
});
const seqDoor: SequenceDoor = {
  kind: 'sequence',
  name: 'seq',
  sequence: [
    { port: 1234, protocol: 'tcp' },
    { port: 5678, protocol: 'tcp' },
    { port: 9012, protocol: 'tcp' },
  ],
  windowMs: 60_000,
  open: [{ port: 23, protocol: 'tcp' }],
  durationMs: 30_000,
};

function udp(source: string, payload: Uint8Array, time = T0, port = 62201, extra: Partial<KnockEvent> = {}): KnockEvent {
  return { time, family: source.includes(':') ? 6 : 4, source, destination: '10.199.0.1', protocol: 'udp', sourcePort: 40000, port, tcpFlags: 0, payload, ...extra };
}
function syn(source: string, port: number, time: number): KnockEvent {
  return { time, family: 4, source, destination: '10.199.0.1', protocol: 'tcp', sourcePort: 40000, port, tcpFlags: 2, payload: new Uint8Array(0) };
}

function setup(doors: (SpaDoor | SequenceDoor)[] = [spaDoor('ssh'), spaDoor('any', { allowIp: 'any' })], maxSources = 100) {
  const spa = doors.filter((d): d is SpaDoor => d.kind === 'spa');
  const store = createMemorySpaStore([user('alice', KEY_A), user('bob', KEY_B)], spa);
  const det = createDetector(doors, { maxSources, stores: { spa: store } });
  const out: Decision[] = [];
  return { det, out, store, feed: (ev: KnockEvent) => det.onKnock(ev, (d) => out.push(d)) };
}

describe('spa doors in the detector', () => {
  it('opens the door for the sealed address, once; a second send is rejected', () => {
    const { out, feed } = setup();
    const d = datagram({ address: '192.0.2.10' });
    feed(udp('192.0.2.10', d));
    feed(udp('192.0.2.10', d, T0 + 100));
    expect(out.map((x) => [x.type, x.door, x.source, 'reason' in x ? x.reason : ''])).toEqual([
      ['knock', 'ssh', '192.0.2.10', ''],
      ['open', 'ssh', '192.0.2.10', ''],
      ['reject', 'ssh', '192.0.2.10', 'replayed'],
    ]);
  });
  it('allow_ip any opens the sealed address, not the source', () => {
    const { out, feed } = setup();
    feed(udp('198.51.100.1', datagram({ door: 'any', address: '203.0.113.5' })));
    expect(out.find((x) => x.type === 'open')).toMatchObject({ door: 'any', source: '203.0.113.5' });
  });
  it('a datagram is judged once for doors sharing a port, and a refusal reported once', () => {
    const { out, feed, store } = setup();
    const junk = new Uint8Array(101);
    junk[0] = 1;
    feed(udp('192.0.2.10', junk));
    expect(out).toEqual([{ type: 'reject', time: T0, door: 'ssh', source: '192.0.2.10', reason: 'unknown-hint' }]);
    expect(store.server.counts['unknown-hint']).toBe(1);
  });
  it('IP fragments are refused whatever they carry', () => {
    const { out, feed } = setup();
    feed(udp('192.0.2.10', datagram({ address: '192.0.2.10' }), T0, 62201, { fragmented: true }));
    expect(out.map((x) => x.type === 'reject' && x.reason)).toEqual(['fragment']);
  });
  it('junk datagrams create no source-table entries and never push out sequence progress', () => {
    const { det, out, feed } = setup([spaDoor('ssh'), seqDoor], 10);
    feed(syn('192.0.2.50', 1234, T0));
    feed(syn('192.0.2.50', 5678, T0 + 10));
    for (let i = 0; i < 5000; i++) feed(udp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, new Uint8Array(101), T0 + 20 + i / 1000));
    expect(det.stats.sources).toBe(1);
    expect(det.stats.evictions).toBe(0);
    feed(syn('192.0.2.50', 9012, T0 + 30));
    expect(out.filter((x) => x.type === 'open').map((x) => [x.door, x.source])).toEqual([['seq', '192.0.2.50']]);
  });
  it('without a store (a detector built only for capture needs) nothing opens', () => {
    const det = createDetector([spaDoor('ssh')]);
    const out: Decision[] = [];
    det.onKnock(udp('192.0.2.10', datagram({ address: '192.0.2.10' })), (d) => out.push(d));
    expect(out.map((x) => x.type === 'reject' && x.reason)).toEqual(['no-keys']);
  });
});
