// The demo's transcript: daemon log lines become readable sentences (and the
// ones the demo does not show stay out), checks decide the exit code.
import { describe, expect, it } from 'vitest';
import { createTranscript, describeDaemonLine } from '../../src/cli/demo-transcript.js';
import type { DaemonLogLine } from '../../src/lab/daemon-process.js';

const line = (msg: string, extra: object = {}, level = 30): DaemonLogLine => ({ level, time: 0, msg, ...extra });

describe('describeDaemonLine', () => {
  it('renders opens, closes and resets with who, what and why', () => {
    expect(
      describeDaemonLine(line('access opened', { door: 'ssh', source: '10.199.0.2', ports: ['2222/tcp'], until: '2026-01-02T03:04:05.678Z' })),
    ).toBe('access opened: door ssh for 10.199.0.2 -> 2222/tcp until 03:04:05.678');
    expect(describeDaemonLine(line('access closed', { door: 'ssh', source: '10.199.0.2', ports: ['2222/tcp', '80/tcp'], reason: 'expired' }))).toBe(
      'access closed: door ssh for 10.199.0.2 -> 2222/tcp, 80/tcp (expired)',
    );
    expect(describeDaemonLine(line('sequence reset', { door: 'ssh', source: 'fd00::2', step: 2, reason: 'wrong-port', port: 4444, protocol: 'tcp' }))).toBe(
      'sequence reset: door ssh for fd00::2 after 2 step(s), reason wrong-port at 4444/tcp',
    );
    expect(describeDaemonLine(line('sequence reset', { door: 'ssh', source: 'fd00::2', step: 2, reason: 'window' }))).toBe(
      'sequence reset: door ssh for fd00::2 after 2 step(s), reason window',
    );
  });

  it('hides routine lines but always shows warnings and errors', () => {
    expect(describeDaemonLine(line('firewall command'))).toBeUndefined();
    expect(describeDaemonLine(line('something odd', { err: 'EPERM' }, 40))).toBe('warning: something odd (EPERM)');
    expect(describeDaemonLine(line('capture failed', {}, 60))).toBe('ERROR: capture failed');
  });
});

describe('createTranscript', () => {
  it('stamps lines, records failed checks, and prints nothing once silenced', () => {
    let out = '';
    const t = createTranscript((s) => {
      out += s;
    });
    t.say('client', 'knock');
    expect(t.check('port is open', true, 'connected')).toBe(true);
    expect(t.check('port stays closed', false, 'connected')).toBe(false);
    expect(out).toMatch(/^\[ +\d+\.\d\ds\] client  knock\n/);
    expect(out).toContain('ok      port is open: connected');
    expect(out).toContain('FAILED  port stays closed: connected');
    expect(t.failures).toEqual(['port stays closed: connected']);
    t.silence();
    const before = out;
    t.say('daemon', 'after');
    t.check('late', false, 'x');
    expect(out).toBe(before);
    expect(t.failures).toHaveLength(2);
  });
});
