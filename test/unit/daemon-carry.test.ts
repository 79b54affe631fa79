// What a config reload carries over and what it ends (src/ledger.ts): the
// rule that keeps start_command/stop_command balanced (issue 8 item 5).
import { describe, expect, it } from 'vitest';
import { endsOnReload, ledgerAccess } from '../../src/daemon/carry.js';
import type { Door } from '../../src/types.js';

const ssh: Door = {
  kind: 'sequence',
  name: 'ssh',
  sequence: [{ port: 1234, protocol: 'tcp' }, { port: 5678, protocol: 'tcp' }],
  windowMs: 5000,
  open: [{ port: 22, protocol: 'tcp' }, { port: 2222, protocol: 'tcp' }],
  durationMs: 20_000,
  startCommand: ['logger', 'open %IP%'],
  stopCommand: ['logger', 'close %IP%'],
};
const NOW = 1_800_000_000_000;
const access = { door: 'ssh', source: '192.0.2.7', until: NOW + 10_000, ports: [{ port: 22, protocol: 'tcp' as const }] };

describe('endsOnReload', () => {
  it('carries an access over an identical config, a new sequence, window or duration', () => {
    for (const next of [ssh, { ...ssh, sequence: [{ port: 4000, protocol: 'udp' as const }], windowMs: 1000, durationMs: 1000 }]) {
      expect(endsOnReload([ssh], [next])(access)).toBe(false);
    }
  });

  it('ends it when the door is removed, loses a port the access holds, or its start/stop command changes', () => {
    const changed: Door[][] = [
      [],
      [{ ...ssh, name: 'web' }],
      [{ ...ssh, open: [{ port: 2222, protocol: 'tcp' }] }],
      [{ ...ssh, open: [{ port: 22, protocol: 'udp' }] }],
      [{ ...ssh, startCommand: ['logger', 'hello %IP%'] }],
      [{ ...ssh, stopCommand: undefined }],
    ];
    for (const doors of changed) {
      expect(endsOnReload([ssh], doors)(access)).toBe(true);
    }
  });

  it('a door that gains ports or commands it did not have changes; one that keeps none on both sides does not', () => {
    const bare: Door = { ...ssh, startCommand: undefined, stopCommand: undefined };
    expect(endsOnReload([bare], [bare])(access)).toBe(false);
    expect(endsOnReload([bare], [ssh])(access)).toBe(true);
    expect(endsOnReload([ssh], [{ ...ssh, open: [...ssh.open, { port: 80, protocol: 'tcp' }] }])(access)).toBe(false);
  });
});

describe('ledgerAccess', () => {
  it('keeps the deadline and derives the family', () => {
    expect(ledgerAccess(access, NOW)).toEqual({ door: 'ssh', source: '192.0.2.7', family: 4, ports: access.ports, until: NOW + 10_000 });
    expect(ledgerAccess({ ...access, source: '2001:db8::7' }, NOW).family).toBe(6);
  });
});
