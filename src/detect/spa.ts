// The spa door kind: one authenticated UDP datagram opens the door for the
// address sealed inside it. The rules are in src/spa/ (verify.ts); this module
// only fits them to the detector: a packet matcher (no per-source state, so a
// flood of junk datagrams creates no table entries and pushes out no
// sequence progress), judged on the door's UDP port.
//
// Several spa doors may share one port (the datagram names its door): the
// datagram is verified once (the store keeps the last verdict), the door it
// names completes, and a refusal is reported once: by the door it names when
// it authenticated, else by the first spa door on that port. Nothing is ever
// sent back.
import type { KnockEvent, SpaDoor } from '../types.js';
import { verifyDatagram, type SpaVerdict } from '../spa/verify.js';
import { checkPort } from './checks.js';
import type { KindContext } from './kinds.js';
import { portKey, type MatchSink, type PacketMatcher } from './matcher.js';

/** A datagram cut into IP fragments is refused whatever it holds: one datagram, one packet. */
const FRAGMENT: SpaVerdict = Object.freeze({ ok: false as const, reason: 'fragment' });
const NO_KEYS: SpaVerdict = Object.freeze({ ok: false as const, reason: 'no-keys' });

export function spaMatcher(door: SpaDoor, ctx: KindContext): PacketMatcher {
  const { index, at } = ctx;
  checkPort({ port: door.port, protocol: 'udp' }, `${at} spa port`);
  if (!Number.isFinite(door.maxAgeMs) || door.maxAgeMs < 0 || door.maxAgeMs > 300_000) throw new Error(`${at}: maxAgeMs must be 0-300000, got ${door.maxAgeMs}`);
  const store = ctx.stores.spa;
  const key = portKey(door.port, 'udp');
  // The first spa door (config order) on this port reports refusals.
  const reporter = store === undefined ? true : [...store.server.doors.values()].find((d) => d.port === door.port)?.name === door.name;
  if (store !== undefined && !store.server.doors.has(door.name)) throw new Error(`${at}: spa store built without this door`);

  function verdictOf(ev: KnockEvent, t: number): SpaVerdict {
    // Without keys (a detector built only to derive capture needs) nothing opens.
    if (store === undefined) return NO_KEYS;
    if (store.last.ev === ev && store.last.verdict !== undefined) return store.last.verdict;
    let verdict: SpaVerdict;
    if (ev.fragmented === true) {
      store.server.counts.fragment += 1;
      verdict = FRAGMENT;
    } else {
      verdict = verifyDatagram(store.server, ev.payload, ev.source, ev.port, t + store.offsetMs);
    }
    store.last.ev = ev;
    store.last.verdict = verdict;
    if (!verdict.ok && verdict.user !== undefined) {
      if (verdict.alert !== undefined) store.onAlert?.(verdict);
      store.onRefused?.(verdict, ev.source);
    }
    return verdict;
  }

  return {
    index,
    name: door.name,
    startKeys: [key],
    watch: {
      // pcap's filter admits by protocol; the eBPF program lets a step port
      // through for any source without making the source active.
      protocols: ['udp'],
      firstSteps: [],
      steps: [{ port: door.port, protocol: 'udp' }],
      openPorts: door.open,
    },
    judge(ev: KnockEvent, _key: number, t: number, sink: MatchSink): void {
      const v = verdictOf(ev, t);
      if (v.ok) {
        if (v.door !== door.name) return;
        sink.knock();
        sink.complete(v.address);
      } else if (v.door !== undefined && store?.server.doors.get(v.door)?.port === door.port ? v.door === door.name : reporter) {
        // An authenticated datagram names its door: that door reports it; junk goes to the port's first door.
        sink.reject(v.reason);
      }
    },
  };
}
