// The one address rule of live capture (src/capture/host-addresses.ts): which
// knocks are addressed to this host, against a live set of its addresses.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Subject } from 'rxjs';
import { canonicalAddress, createHostAddressSet, hostVerdict, keepKnocksForHost, readHostAddresses, type HostFilterCounts } from '../../src/capture/host-addresses.js';
import { formatIPv4, formatIPv6 } from '../../src/decode/address.js';
import type { KnockEvent } from '../../src/types.js';

const LOCAL = new Set(['10.199.0.1', 'fd00:6b77::1', '10.77.0.1', '127.0.0.1', '::1']);

function knock(source: string, destination: string): KnockEvent {
  return { time: 0, family: destination.includes(':') ? 6 : 4, source, destination, protocol: 'tcp', sourcePort: 40000, port: 1234, tcpFlags: 2, payload: new Uint8Array(0) };
}

describe('hostVerdict: the address rule', () => {
  it('counts a knock to any of the host\'s addresses from a stranger', () => {
    expect(hostVerdict('10.199.0.2', '10.199.0.1', LOCAL)).toBe('host');
    expect(hostVerdict('fd00:6b77::2', 'fd00:6b77::1', LOCAL)).toBe('host');
    // An address of another interface (lo here): the kernel accepts it on any interface.
    expect(hostVerdict('10.199.0.2', '10.77.0.1', LOCAL)).toBe('host');
  });
  it('never counts another host\'s address (promiscuous capture)', () => {
    expect(hostVerdict('10.199.0.2', '10.199.0.9', LOCAL)).toBe('not-ours');
    expect(hostVerdict('10.199.0.2', '::ffff:10.199.0.1', LOCAL)).toBe('not-ours');
  });
  it('never counts a loopback destination, although 127.0.0.1 and ::1 are local', () => {
    expect(hostVerdict('10.199.0.2', '127.0.0.1', LOCAL)).toBe('loopback');
    expect(hostVerdict('10.199.0.2', '127.8.9.10', LOCAL)).toBe('loopback');
    expect(hostVerdict('fd00:6b77::2', '::1', LOCAL)).toBe('loopback');
  });
  it('never counts our own address as the source (our outgoing packets, spoofed "from us")', () => {
    expect(hostVerdict('10.199.0.1', '10.199.0.1', LOCAL)).toBe('own-source');
    expect(hostVerdict('10.77.0.1', '10.199.0.1', LOCAL)).toBe('own-source');
    expect(hostVerdict('127.0.0.1', '10.199.0.1', LOCAL)).toBe('own-source');
  });
});

describe('canonicalAddress', () => {
  it('writes addresses as the decoder does (RFC 5952), for any bytes', () => {
    // Groups are mostly zero so that runs of zeros, and their ties, are common.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.boolean(), (groups, mapped) => {
        if (mapped) groups.splice(0, 6, 0, 0, 0, 0, 0, 0xffff);
        const bytes = new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));
        const full = groups.map((g) => g.toString(16).toUpperCase().padStart(4, '0')).join(':');
        expect(canonicalAddress(full)).toBe(formatIPv6(bytes, 0));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => {
        expect(canonicalAddress([...b].join('.'))).toBe(formatIPv4(b, 0));
      }),
    );
  });
  it('drops a zone index and refuses what is not an address', () => {
    expect(canonicalAddress('FE80::1%eth0')).toBe('fe80::1');
    expect(canonicalAddress('::1.2.3.4')).toBe('::102:304');
    expect(canonicalAddress('eth0')).toBeUndefined();
    expect(canonicalAddress('10.0.0.1 or host 1.2.3.4')).toBeUndefined();
  });
  it('reads every interface of the namespace, loopback included', () => {
    expect(readHostAddresses()).toEqual(expect.arrayContaining(['127.0.0.1']));
  });
});

describe('createHostAddressSet', () => {
  function fake(initial: string[]) {
    let list = initial;
    let reads = 0;
    let t = 1000;
    const set = createHostAddressSet({
      read: () => {
        reads++;
        return list;
      },
      now: () => t,
      graceMs: 2000,
      missRefreshMs: 100,
    });
    return {
      set,
      setList: (l: string[]) => (list = l),
      advance: (ms: number) => (t += ms),
      reads: () => reads,
    };
  }

  it('counts an added address at once and a removed one for the grace period only', () => {
    const f = fake(['10.199.0.1']);
    f.set.update(['10.199.0.1', '2001:DB8::1']);
    expect(f.set.has('2001:db8::1')).toBe(true);
    f.set.update(['2001:db8::1']);
    expect(f.set.current()).toEqual(['2001:db8::1']);
    f.advance(1999);
    expect(f.set.verdict('10.199.0.2', '10.199.0.1')).toBe('host'); // in flight when it went: still ours
    f.advance(1);
    expect(f.set.has('10.199.0.1')).toBe(false);
  });

  it('re-reads at once for an unknown destination (an address newer than ip monitor), at most every missRefreshMs', () => {
    const f = fake(['10.199.0.1']);
    expect(f.reads()).toBe(1);
    f.advance(500);
    f.setList(['10.199.0.1', 'fd00:1::1']);
    expect(f.set.verdict('fd00:1::2', 'fd00:1::1')).toBe('host');
    expect(f.reads()).toBe(2);
    // A flood to other hosts' addresses costs at most one read per interval.
    for (let i = 0; i < 1000; i++) expect(f.set.verdict('10.199.0.2', `10.199.1.${i % 250}`)).toBe('not-ours');
    expect(f.reads()).toBe(2);
    f.advance(100);
    f.set.verdict('10.199.0.2', '10.199.0.9');
    expect(f.reads()).toBe(3);
    // Own-source checks never trigger a read.
    f.advance(1000);
    expect(f.set.verdict('10.199.0.1', '10.199.0.1')).toBe('own-source');
    expect(f.reads()).toBe(3);
  });

  it('stays bounded under address churn: only addresses removed within the grace period are kept', () => {
    const f = fake(['10.199.0.1']);
    for (let i = 0; i < 10_000; i++) {
      f.set.update(['10.199.0.1', `2001:db8:${i.toString(16)}::1`]);
      f.advance(250);
    }
    expect(f.set.current()).toHaveLength(2);
    // Removed 250 ms ago and earlier: at most graceMs / 250 ms of them still count.
    const still = Array.from({ length: 10_000 }, (_, i) => `2001:db8:${i.toString(16)}::1`).filter((a) => f.set.has(a));
    expect(still.length).toBeLessThanOrEqual(9);
  });
});

describe('keepKnocksForHost', () => {
  it('passes only knocks for this host, follows changes without interrupting the stream, and counts the rest', () => {
    const changes = new Subject<readonly string[]>();
    const counts: HostFilterCounts = { notOurs: 0, loopback: 0, ownSource: 0 };
    const input = new Subject<KnockEvent>();
    const got: string[] = [];
    let t = 0;
    const sub = input
      .pipe(keepKnocksForHost({ read: () => ['10.199.0.1', '127.0.0.1'], changes, counts, now: () => t, missRefreshMs: 1e9 }))
      .subscribe((ev) => got.push(`${ev.source}>${ev.destination}`));
    input.next(knock('10.199.0.2', '10.199.0.1'));
    input.next(knock('10.199.0.2', '10.199.0.9'));
    input.next(knock('10.199.0.2', '127.0.0.1'));
    input.next(knock('10.199.0.1', '10.199.0.1'));
    changes.next(['10.199.0.1', '127.0.0.1', 'fd00:9::1']);
    input.next(knock('fd00:9::2', 'fd00:9::1'));
    changes.next(['127.0.0.1']);
    input.next(knock('10.199.0.3', '10.199.0.1')); // just removed: grace
    t += 5000;
    input.next(knock('10.199.0.4', '10.199.0.1'));
    expect(got).toEqual(['10.199.0.2>10.199.0.1', 'fd00:9::2>fd00:9::1', '10.199.0.3>10.199.0.1']);
    expect(counts).toEqual({ notOurs: 2, loopback: 1, ownSource: 1 });
    sub.unsubscribe();
    expect(changes.observed).toBe(false);
  });
});
