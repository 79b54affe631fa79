// Knock client argument handling: step syntax, option validation and the
// errors the user sees. Nothing here reaches the network: every case fails
// (or is parsed) before a socket is made.
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { parseKnockStep, parsePort } from '../../src/client/port-spec.js';
import { knock, checkPort, resolveTarget } from '../../src/client/knock.js';
import { main } from '../../src/cli/knock.js';

describe('parseKnockStep', () => {
  it.each([
    ['1234', 'tcp', { port: 1234, protocol: 'tcp' }],
    ['1234', 'udp', { port: 1234, protocol: 'udp' }],
    ['1234:tcp', 'udp', { port: 1234, protocol: 'tcp' }],
    ['1234:udp', 'tcp', { port: 1234, protocol: 'udp' }],
    ['1234/tcp', 'udp', { port: 1234, protocol: 'tcp' }],
    ['1234/UDP', 'tcp', { port: 1234, protocol: 'udp' }],
    ['1', 'tcp', { port: 1, protocol: 'tcp' }],
    ['65535:udp', 'tcp', { port: 65535, protocol: 'udp' }],
  ] as const)('%s (default %s)', (text, def, want) => {
    expect(parseKnockStep(text, def)).toEqual(want);
  });

  it.each([
    ['0', /port 0 is outside 1-65535/],
    ['65536', /port 65536 is outside 1-65535/],
    ['123456', /expected PORT, PORT:tcp/],
    ['1234:sctp', /protocol 'sctp' is neither tcp nor udp/],
    ['1234:', /expected PORT/],
    ['-1', /expected PORT/],
    ['12a', /expected PORT/],
    ['1234:tcp:udp', /expected PORT/],
    ['', /expected PORT/],
  ])('rejects %j naming it', (text, message) => {
    expect(() => parseKnockStep(text)).toThrow(message);
    expect(() => parseKnockStep(text)).toThrow(`'${text}'`);
  });

  it('round-trips every port and protocol in both separators', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65535 }), fc.constantFrom('tcp', 'udp'), fc.constantFrom(':', '/'), (port, protocol, sep) => {
        expect(parseKnockStep(`${port}${sep}${protocol}`)).toEqual({ port, protocol });
      }),
    );
  });
});

describe('parsePort', () => {
  it('accepts 1-65535 and names the option when not', () => {
    expect(parsePort('22', '--check port')).toBe(22);
    expect(() => parsePort('0', '--check port')).toThrow("invalid --check port '0'");
    expect(() => parsePort('ssh', '--check port')).toThrow("invalid --check port 'ssh'");
  });
});

describe('knock() and checkPort() validation', () => {
  const steps = [{ port: 1234, protocol: 'tcp' as const }];
  it('rejects a bad delay, an empty sequence, and a family that contradicts the address', async () => {
    await expect(knock({ host: '127.0.0.1', steps, delayMs: -1 })).rejects.toThrow('invalid delay -1');
    await expect(knock({ host: '127.0.0.1', steps, delayMs: 1.5 })).rejects.toThrow('invalid delay 1.5');
    await expect(knock({ host: '127.0.0.1', steps: [], delayMs: 0 })).rejects.toThrow('no knock steps');
    await expect(knock({ host: '::1', steps, delayMs: 0, family: 4 })).rejects.toThrow("'::1' is an IPv6 address but IPv4 was requested");
    await expect(knock({ host: '127.0.0.1', steps, delayMs: 0, sourceAddress: '::1' })).rejects.toThrow('is an IPv4 address but IPv6 was requested');
    await expect(knock({ host: '127.0.0.1', steps, delayMs: 0, sourceAddress: 'nope' })).rejects.toThrow("source address 'nope' is not an IP address");
  });

  it('checkPort rejects a bad port or timeout', async () => {
    await expect(checkPort('127.0.0.1', 0, 100)).rejects.toThrow('invalid port 0');
    await expect(checkPort('127.0.0.1', 22, 0)).rejects.toThrow('invalid timeout 0');
  });

  it('resolveTarget keeps address literals as they are', async () => {
    await expect(resolveTarget('10.199.0.1')).resolves.toEqual({ address: '10.199.0.1', family: 4 });
    await expect(resolveTarget('fd00:6b77::1', 6)).resolves.toEqual({ address: 'fd00:6b77::1', family: 6 });
  });
});

describe('knockwatch knock usage errors', () => {
  let err = '';
  let out = '';
  afterEach(() => {
    vi.restoreAllMocks();
    err = '';
    out = '';
  });
  function capture(): void {
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  }

  it.each([
    [[], 'missing HOST'],
    [['10.0.0.1'], 'give at least one PORT'],
    [['10.0.0.1', '1', '-4', '-6'], '-4 and -6 exclude each other'],
    [['10.0.0.1', '1', '--delay', 'soon'], "invalid --delay 'soon'"],
    [['10.0.0.1', '1', '--delay=-5'], "invalid --delay '-5'"],
    [['10.0.0.1', '--check', '70000'], "invalid --check port '70000'"],
    [['10.0.0.1', '--check', '22', '--timeout', '0'], "invalid --timeout '0'"],
    [['10.0.0.1', '1', '--timeout', '100'], '--timeout applies only with --check'],
    [['10.0.0.1', '1:icmp'], "protocol 'icmp' is neither tcp nor udp"],
    [['10.0.0.1', '1', '--bogus'], 'knockwatch knock: unknown option --bogus'],
    [['10.0.0.1', '--check'], 'knockwatch knock: option --check needs a value'],
  ])('%j exits 2 with %j', async (argv, message) => {
    capture();
    expect(await main(argv)).toBe(2);
    expect(err).toContain(message);
    expect(err).toContain('usage: knockwatch knock HOST');
    expect(out).toBe('');
  });

  it('--help prints the options and exits 0', async () => {
    capture();
    expect(await main(['--help'])).toBe(0);
    expect(out).toContain('--check PORT');
    expect(err).toBe('');
  });

  it('a family mismatch is a runtime error: exit 1, message on stderr', async () => {
    capture();
    expect(await main(['-4', '::1', '1234'])).toBe(1);
    expect(err).toContain("host '::1' is an IPv6 address but IPv4 was requested");
  });
});
