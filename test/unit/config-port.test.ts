import { describe, expect, test } from 'vitest';
import { parsePortSpec } from '../../src/config/index.js';

describe('parsePortSpec', () => {
  test.each([
    [1234, 1234, 'tcp'],
    [1, 1, 'tcp'],
    [65535, 65535, 'tcp'],
    ['1234', 1234, 'tcp'],
    ['1234/tcp', 1234, 'tcp'],
    ['1234/udp', 1234, 'udp'],
    ['1234:udp', 1234, 'udp'],
    ['1234:tcp', 1234, 'tcp'],
    ['1234/UDP', 1234, 'udp'],
    [' 53 / udp ', 53, 'udp'],
  ])('%j -> %d/%s', (input, port, protocol) => {
    expect(parsePortSpec(input)).toEqual({ port, protocol });
  });

  test.each([
    [0, /port 0 is outside 1-65535/],
    [65536, /port 65536 is outside 1-65535/],
    [-1, /port -1 is outside 1-65535/],
    [12.5, /port 12.5 is not an integer/],
    [Number.NaN, /port NaN is not an integer/],
    ['0/tcp', /port 0 is outside 1-65535/],
    ['70000', /port 70000 is outside 1-65535/],
    ['1234/sctp', /unknown protocol 'sctp' in '1234\/sctp' \(expected tcp or udp\)/],
    ['1234/', /unknown protocol '' in '1234\/'/],
    ['1234:icmp', /unknown protocol 'icmp'/],
    ['abc', /invalid port 'abc': expected PORT, PORT\/tcp or PORT\/udp/],
    ['/tcp', /invalid port '\/tcp'/],
    ['12.5/tcp', /invalid port '12.5\/tcp'/],
    ['-1/tcp', /invalid port '-1\/tcp'/],
    ['0x10', /invalid port '0x10'/],
    ['', /invalid port ''/],
    ['1234/tcp/udp', /unknown protocol 'tcp\/udp'/],
  ])('rejects %j', (input, re) => {
    expect(() => parsePortSpec(input)).toThrow(re);
  });
});
