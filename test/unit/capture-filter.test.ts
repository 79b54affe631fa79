// The live-capture BPF filter text. What libpcap makes of it is checked in
// test/e2e/capture-filter-libpcap.test.ts; here: the clauses each config
// produces, and bad input.
import { describe, expect, it } from 'vitest';
import { buildCaptureFilter, captureProtocols } from '../../src/capture/filter.js';
import type { Protocol } from '../../src/types.js';

// What a config needs (both, as soon as a door has a sequence) is decided by
// detect's captureNeeds(): test/unit/detect-capture-needs.test.ts.
const BOTH: Protocol[] = ['tcp', 'udp'];

const V4_SYN = 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn';
const V4_UDP = '(udp and ip[6:2] & 0x1fff == 0)';
const V6_SYN = '(ip6[6] == 6 and ip6[53] & 0x12 == 0x02)';
const V6_UDP = 'ip6[6] == 17';

describe('buildCaptureFilter', () => {
  it('admits TCP SYNs and UDP of both families', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).toContain(V4_SYN);
    expect(f).toContain(V4_UDP);
    expect(f).toContain(V6_SYN);
    expect(f).toContain(V6_UDP);
  });

  it('never restricts ports: a sweep must reach detection to reset it', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).not.toMatch(/port/);
  });

  it('admits only the protocols it is given', () => {
    const f = buildCaptureFilter(['udp']);
    expect(f).toContain(V4_UDP);
    expect(f).not.toContain('tcp');
  });

  it('holds no host address, so an address change never needs a new filter (issue 8 item 7)', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).not.toMatch(/\bhost (?!::1\))/);
    expect(f).not.toMatch(/src/);
    // Both families always: an address of the other family may be added later.
    expect(f).toMatch(/^\(\(ip and /);
    expect(f).toContain(' or (ip6 and ');
  });

  it('drops loopback destinations in the kernel (the address rule\'s static part)', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).toContain('not dst net 127.0.0.0/8');
    expect(f).toContain('not dst host ::1');
  });

  it('never uses inbound or ifindex (libpcap cannot run them in userland: first packet lost)', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).not.toMatch(/inbound|outbound|ifindex/);
  });

  it('walks one IPv6 extension header and passes longer chains', () => {
    const f = buildCaptureFilter(BOTH);
    expect(f).toContain('(ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60)');
    expect(f).toContain('ip6[40 + (ip6[41] + 1) * 8 + 13] & 0x12 == 0x02');
    expect(f).toContain('ip6[6] == 44 and ip6[42:2] & 0xfff8 == 0');
    expect(f).toContain('ip6[61] & 0x12 == 0x02');
    expect(f).toContain('ip6[40] == 0 or ip6[40] == 43 or ip6[40] == 44 or ip6[40] == 60');
    // IPsec is not admitted.
    expect(f).not.toMatch(/== 50|== 51/);
  });

  it('has balanced parentheses for every combination', () => {
    for (const protocols of [['tcp'], ['udp'], BOTH] as Protocol[][]) {
      const f = buildCaptureFilter(protocols);
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
    expect(() => buildCaptureFilter([])).toThrow(/no protocol to capture/);
    expect(() => buildCaptureFilter(['icmp' as Protocol])).toThrow(/unknown protocol 'icmp'/);
  });
});

describe('captureProtocols', () => {
  it('checks a protocol list and puts it in a fixed order without repeats', () => {
    expect(captureProtocols(['udp', 'tcp', 'udp'])).toEqual(['tcp', 'udp']);
    expect(captureProtocols(['udp'])).toEqual(['udp']);
    expect(() => captureProtocols([])).toThrow(/no protocol to capture/);
  });
});
