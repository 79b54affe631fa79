// The daemon's log of decisions: what an operator sees at info level, and
// what stays at debug (scanner noise, and the per-access lines of a stop).
import { describe, expect, it } from 'vitest';
import { logDecision } from '../../src/daemon/decision-log.js';
import type { Logger } from '../../src/log.js';
import type { Decision } from '../../src/types.js';

function recorder(): { log: Logger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_obj: object, msg: string) => lines.push({ level, msg });
  return { log: { info: at('info'), debug: at('debug') } as unknown as Logger, lines };
}

const ports = [{ port: 2222, protocol: 'tcp' as const }];
const close = (reason: 'expired' | 'shutdown' | 'reload'): Decision => ({ type: 'close', door: 'ssh', source: '192.0.2.1', time: 1, ports, reason });

describe('logDecision', () => {
  it('logs opens, refreshes and closes at info', () => {
    const { log, lines } = recorder();
    logDecision(log, { type: 'open', door: 'ssh', source: '192.0.2.1', time: 1, until: 20_001, ports, refreshed: false });
    logDecision(log, { type: 'open', door: 'ssh', source: '192.0.2.1', time: 2, until: 20_002, ports, refreshed: true });
    logDecision(log, close('expired'));
    logDecision(log, close('reload'));
    expect(lines).toEqual([
      { level: 'info', msg: 'access opened' },
      { level: 'info', msg: 'access refreshed' },
      { level: 'info', msg: 'access closed' },
      { level: 'info', msg: 'access closed' },
    ]);
  });

  it('keeps the accesses a stop leaves to the kernel at debug (the daemon logs one summary line)', () => {
    const { log, lines } = recorder();
    logDecision(log, close('shutdown'));
    expect(lines).toEqual([{ level: 'debug', msg: 'access left to its kernel timeout' }]);
  });

  it('keeps resets after a first step only at debug, later ones at info', () => {
    const { log, lines } = recorder();
    const reset = (step: number): Decision => ({ type: 'reset', door: 'ssh', source: '192.0.2.1', time: 1, reason: 'wrong-port', step, port: 4444, protocol: 'tcp' });
    logDecision(log, reset(1));
    logDecision(log, reset(2));
    expect(lines.map((l) => l.level)).toEqual(['debug', 'info']);
  });
});
