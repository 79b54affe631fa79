// Following an interface's addresses and link state.
import { describe, expect, it, vi } from 'vitest';
import type { NetworkInterfaceInfo } from 'node:os';
import {
  addressesOf,
  checkInterfaceName,
  parseFlags,
  readInterfaceState,
  sameState,
  watchInterfaces,
  type InterfaceState,
} from '../../src/capture/interfaces.js';

function info(address: string, family: 'IPv4' | 'IPv6'): NetworkInterfaceInfo {
  const base = { address, netmask: '', mac: '00:00:00:00:00:00', internal: false, cidr: null };
  return family === 'IPv4' ? { ...base, family } : { ...base, family, scopeid: 0 };
}

const TABLE: NodeJS.Dict<NetworkInterfaceInfo[]> = {
  lo: [info('127.0.0.1', 'IPv4'), info('::1', 'IPv6')],
  eth0: [info('192.0.2.10', 'IPv4'), info('FE80::1', 'IPv6'), info('2001:db8::10', 'IPv6'), info('192.0.2.10', 'IPv4')],
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('addressesOf', () => {
  it('lists one interface sorted, lower-cased and de-duplicated', () => {
    expect(addressesOf(TABLE, 'eth0')).toEqual(['192.0.2.10', '2001:db8::10', 'fe80::1']);
  });
  it('lists every interface for any', () => {
    expect(addressesOf(TABLE, 'any')).toEqual(['127.0.0.1', '192.0.2.10', '2001:db8::10', '::1', 'fe80::1']);
  });
  it('gives nothing for an unknown interface', () => {
    expect(addressesOf(TABLE, 'eth9')).toEqual([]);
  });
});

describe('interface helpers', () => {
  it('parses /sys flags words', () => {
    expect(parseFlags('0x1003\n') & 1).toBe(1);
    expect(parseFlags('0x1002') & 1).toBe(0);
    expect(parseFlags('garbage')).toBeNaN();
  });
  it('rejects names that cannot be interfaces (and would escape /sys/class/net)', () => {
    for (const bad of ['', '../etc', 'a/b', 'eth 0', 'x'.repeat(16), '..', '.']) {
      expect(() => checkInterfaceName(bad), bad).toThrow(/invalid interface name/);
    }
    expect(() => checkInterfaceName('eth0.100')).not.toThrow();
    expect(() => checkInterfaceName('any')).not.toThrow();
  });
  it('compares states field by field', () => {
    const a: InterfaceState = { addresses: ['10.0.0.1'], up: true, ifindex: 2 };
    expect(sameState(a, { addresses: ['10.0.0.1'], up: true, ifindex: 2 })).toBe(true);
    expect(sameState(a, { addresses: ['10.0.0.1'], up: false, ifindex: 2 })).toBe(false);
    expect(sameState(a, { addresses: ['10.0.0.1'], up: true, ifindex: 3 })).toBe(false);
    expect(sameState(a, { addresses: ['10.0.0.2'], up: true, ifindex: 2 })).toBe(false);
    expect(sameState(a, { addresses: [], up: true, ifindex: 2 })).toBe(false);
  });
  it('reads real state without changing anything', () => {
    const lo = readInterfaceState('lo');
    expect(lo.up).toBe(true);
    expect(lo.ifindex).toBe(1);
    expect(lo.addresses).toContain('127.0.0.1');
    expect(readInterfaceState('kwnope0')).toEqual({ addresses: [], up: false });
    const any = readInterfaceState('any');
    expect(any.up).toBe(true);
    expect(any.addresses).toContain('127.0.0.1');
  });
});

describe('watchInterfaces', () => {
  it('emits the first state and then only changes', async () => {
    const states: InterfaceState[] = [
      { addresses: ['10.0.0.1'], up: true, ifindex: 2 },
      { addresses: ['10.0.0.1'], up: true, ifindex: 2 },
      { addresses: ['10.0.0.1', '10.0.0.2'], up: true, ifindex: 2 },
      { addresses: ['10.0.0.1', '10.0.0.2'], up: false, ifindex: 2 },
      { addresses: ['10.0.0.1', '10.0.0.2'], up: false, ifindex: 2 },
      { addresses: ['10.0.0.1', '10.0.0.2'], up: true, ifindex: 7 },
    ];
    let i = 0;
    const read = vi.fn(() => states[Math.min(i++, states.length - 1)]);
    const seen: InterfaceState[] = [];
    let completed = false;
    const sub = watchInterfaces('eth0', { read, pollMs: 5, monitor: false }).subscribe({
      next: (s) => seen.push(s),
      complete: () => (completed = true),
    });
    await sleep(80);
    sub.unsubscribe();
    expect(seen).toEqual([states[0], states[2], states[3], states[5]]);
    expect(completed).toBe(false);
    const calls = read.mock.calls.length;
    await sleep(30);
    expect(read.mock.calls.length).toBe(calls); // polling stopped
  });

  it('logs a failing read once and keeps polling', async () => {
    let fail = true;
    const read = (): InterfaceState => {
      if (fail) throw new Error('EACCES');
      return { addresses: ['10.0.0.1'], up: true };
    };
    const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn() };
    const seen: InterfaceState[] = [];
    const sub = watchInterfaces('eth0', { read, pollMs: 5, monitor: false, logger }).subscribe((s) => seen.push(s));
    await sleep(40);
    expect(logger.error).toHaveBeenCalledTimes(1);
    expect(logger.error.mock.calls[0][0]).toMatchObject({ interface: 'eth0', err: 'EACCES' });
    fail = false;
    await sleep(30);
    sub.unsubscribe();
    expect(seen).toEqual([{ addresses: ['10.0.0.1'], up: true }]);
  });

  it('errors at once on an invalid name', () => {
    let error: unknown;
    watchInterfaces('../x', { monitor: false }).subscribe({ error: (e) => (error = e) });
    expect(String(error)).toMatch(/invalid interface name "..\/x"/);
  });
});
