// Issue 9 item 5: the README promises a log line per firewall change. Every
// applied open (or refresh) and close is logged at info with the command that
// ran and its input; a batch of many changes is ONE line with the counts (a
// flood of 2,048 completions must not write 2,048 lines), its input cut short.
import { describe, expect, it } from 'vitest';
import { createFirewall } from '../../src/firewall/index.js';
import { LOGGED_INPUT_CHARS } from '../../src/firewall/batch.js';
import { recorder, sshDoor } from './firewall-support.js';

const NOW = 1_700_000_000_000;
const now = (): number => NOW;
const PROBE = 'table inet knockwatch {\n\tset timeout_probe {\n\t\telements = { 1 timeout 2h expires 1h59m59s996ms }\n\t}\n}\n';
const access = (i: number, until: number) => ({ door: 'ssh', source: `198.18.${i >> 8}.${i & 255}`, family: 4 as const, ports: sshDoor.open, until });

function infoLog() {
  const info: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger = { debug() {}, warn() {}, error() {}, info: (obj: object, msg?: string) => void info.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }) };
  return { logger, info };
}

describe.each(['nftables', 'iptables'] as const)('%s: firewall changes at info', (kind) => {
  const setup = async () => {
    const rec = recorder((req) => (req.args[0] === 'list' && kind === 'nftables' ? { stdout: PROBE } : undefined));
    const log = infoLog();
    const fw = createFirewall(kind, { runner: rec.runner, now, logger: log.logger });
    await fw.init([sshDoor]);
    log.info.length = 0;
    return { fw, log };
  };

  it('one open and one close: one line each, with door, source, ports and the command', async () => {
    const { fw, log } = await setup();
    await fw.open(access(1, NOW + 20_000));
    await fw.close(access(1, 0));
    const changes = log.info.filter((l) => l.msg.startsWith('firewall '));
    expect(changes.map((l) => l.msg)).toEqual(['firewall open (or refresh) applied', 'firewall close applied']);
    for (const l of changes) {
      expect(l.obj).toMatchObject({ door: 'ssh', source: '198.18.0.1', ports: ['2222/tcp'] });
      expect(String(l.obj.command)).toMatch(kind === 'nftables' ? /^nft -f -$/ : /^ipset -exist restore$/);
      expect(String(l.obj.input)).toContain('198.18.0.1');
    }
    expect(changes[0].obj.until).toBe(new Date(NOW + 20_000).toISOString());
  });

  it('2,048 opens applied together: ONE info line with the counts and a bounded input', async () => {
    const { fw, log } = await setup();
    await Promise.all(Array.from({ length: 2048 }, (_, i) => fw.open(access(i, NOW + 20_000))));
    const changes = log.info.filter((l) => l.msg.startsWith('firewall '));
    expect(changes).toHaveLength(1);
    expect(changes[0].msg).toBe('firewall batch applied: 2048 opens, 0 closes');
    expect(changes[0].obj).toMatchObject({ opens: 2048, closes: 0, elements: 2048 });
    expect(String(changes[0].obj.input).length).toBeLessThan(LOGGED_INPUT_CHARS + 40);
  });
});
