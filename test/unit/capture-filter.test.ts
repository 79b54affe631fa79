// The live-capture BPF filter text. What libpcap makes of it is checked in
// test/e2e/capture-filter-libpcap.test.ts; here: the clauses each config
// produces, and bad input.
import { describe, expect, it } from 'vitest';
import { buildCaptureFilter, captureProtocols } from '../../src/capture/filter.js';
import type { Door, PortSpec, Protocol } from '../../src/types.js';

function door(...steps: [number, Protocol][]): Door {
  const sequence: PortSpec[] = steps.map(([port, protocol]) => ({ port, protocol }));
  return { name: 'd', sequence, windowMs: 10_000, open: [{ port: 22, protocol: 'tcp' }], durationMs: 30_000 };
}

const TCP_DOOR = door([1111, 'tcp'], [2222, 'tcp']);
const UDP_DOOR = door([3333, 'udp']);
const MIXED_DOOR = door([1111, 'tcp'], [3333, 'udp']);

const V4_SYN = 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn';
const V4_UDP = '(udp and ip[6:2] & 0x1fff == 0)';
const V6_SYN = '(ip6[6] == 6 and ip6[53] & 0x12 == 0x02)';
const V6_UDP = 'ip6[6] == 17';

describe('buildCaptureFilter', () => {
  it('admits TCP SYNs and UDP of both families for a mixed door', () => {
    const f = buildCaptureFilter([MIXED_DOOR]);
    expect(f).toContain(V4_SYN);
    expect(f).toContain(V4_UDP);
    expect(f).toContain(V6_SYN);
    expect(f).toContain(V6_UDP);
  });

  it('never restricts ports: a sweep must reach detection to reset it', () => {
    const f = buildCaptureFilter([MIXED_DOOR, TCP_DOOR]);
    expect(f).not.toMatch(/port/);
    expect(f).not.toMatch(/1111|2222|3333/);
  });

  it('admits UDP for a TCP-only door and TCP for a UDP-only door: any SYN/UDP to a wrong port resets (issue 8 item 13)', () => {
    for (const door of [TCP_DOOR, UDP_DOOR]) {
      const f = buildCaptureFilter([door]);
      for (const clause of [V4_SYN, V6_SYN, V4_UDP, V6_UDP]) expect(f).toContain(clause);
    }
  });

  it('takes an explicit protocol list over the doors', () => {
    const f = buildCaptureFilter([TCP_DOOR], { protocols: ['udp'] });
    expect(f).toContain(V4_UDP);
    expect(f).not.toContain('tcp');
  });

  it('holds no host address, so an address change never needs a new filter (issue 8 item 7)', () => {
    const f = buildCaptureFilter([MIXED_DOOR]);
    expect(f).not.toMatch(/\bhost (?!::1\))/);
    expect(f).not.toMatch(/src/);
    // Both families always: an address of the other family may be added later.
    expect(f).toMatch(/^\(\(ip and /);
    expect(f).toContain(' or (ip6 and ');
  });

  it('drops loopback destinations in the kernel (the address rule\'s static part)', () => {
    const f = buildCaptureFilter([MIXED_DOOR]);
    expect(f).toContain('not dst net 127.0.0.0/8');
    expect(f).toContain('not dst host ::1');
  });

  it('never uses inbound or ifindex (libpcap cannot run them in userland: first packet lost)', () => {
    const f = buildCaptureFilter([MIXED_DOOR]);
    expect(f).not.toMatch(/inbound|outbound|ifindex/);
  });

  it('walks one IPv6 extension header and passes longer chains', () => {
    const f = buildCaptureFilter([TCP_DOOR]);
    expect(f).toContain('(ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60)');
    expect(f).toContain('ip6[40 + (ip6[41] + 1) * 8 + 13] & 0x12 == 0x02');
    expect(f).toContain('ip6[6] == 44 and ip6[42:2] & 0xfff8 == 0');
    expect(f).toContain('ip6[61] & 0x12 == 0x02');
    expect(f).toContain('ip6[40] == 0 or ip6[40] == 43 or ip6[40] == 44 or ip6[40] == 60');
    // IPsec is not admitted.
    expect(f).not.toMatch(/== 50|== 51/);
  });

  it('has balanced parentheses for every combination', () => {
    for (const doors of [[TCP_DOOR], [UDP_DOOR], [MIXED_DOOR]]) {
      const f = buildCaptureFilter(doors);
      let depth = 0;
      for (const ch of f) {
        if (ch === '(') depth += 1;
        if (ch === ')') depth -= 1;
        expect(depth).toBeGreaterThanOrEqual(0);
      }
      expect(depth).toBe(0);
    }
  });

  it('rejects bad input with a message naming it', () => {
    expect(() => buildCaptureFilter([])).toThrow(/no door has a knock sequence/);
    expect(() => buildCaptureFilter([TCP_DOOR], { protocols: [] })).toThrow(/protocols option is empty/);
    expect(() => buildCaptureFilter([TCP_DOOR], { protocols: ['icmp' as Protocol] })).toThrow(/unknown protocol 'icmp'/);
  });
});

describe('captureProtocols', () => {
  it('is both protocols for any door with a sequence, in a fixed order; an explicit list wins', () => {
    expect(captureProtocols([UDP_DOOR, TCP_DOOR])).toEqual(['tcp', 'udp']);
    expect(captureProtocols([TCP_DOOR])).toEqual(['tcp', 'udp']);
    expect(captureProtocols([UDP_DOOR])).toEqual(['tcp', 'udp']);
    expect(captureProtocols([], ['udp', 'tcp', 'udp'])).toEqual(['tcp', 'udp']);
  });
});
