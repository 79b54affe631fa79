// The knock client against a real kernel: tcpdump in the server namespace sees
// what `knockwatch knock`, run in the client namespace, puts on the wire.
// The server drops the knocked TCP ports (nft, inside the lab), so a client
// that waited for a handshake would hang and one that kept its socket would
// retransmit its SYN after 1 s: the capture window outlasts that.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeLab } from '../support/lab.js';
import { createLab, type Lab } from '../../src/lab/netns.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const LISTEN_PORT = 2222; // a listener runs here
const CLOSED_PORT = 2223; // nothing listens, not filtered: refused at once
const LATE_PORT = 2224; // a listener behind a reject rule that is lifted during the check
const DROPPED_PORT = 2225; // silently dropped: a connect can only time out

interface Seen {
  time: number; // seconds, capture timestamp
  source: string;
  protocol: 'tcp' | 'udp';
  port: number;
  detail: string; // 'Flags [S]' or 'length N'
}

// tcpdump -n -tt lines, e.g.
//   1712.123456 IP 10.199.0.2.41672 > 10.199.0.1.1234: Flags [S], seq 9, win 64240, ...
//   1712.133141 IP6 fd00:6b77::2.60700 > fd00:6b77::1.5678: UDP, length 4
const LINE = /^(\d+\.\d+) IP6? (\S+)\.\d+ > \S+\.(\d+): (?:(Flags \[[^\]]*\])|UDP, (length \d+))/;

function parseCapture(text: string): Seen[] {
  const seen: Seen[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`unexpected tcpdump line: ${line}`);
    seen.push({ time: Number(m[1]), source: m[2], protocol: m[4] ? 'tcp' : 'udp', port: Number(m[3]), detail: m[4] ?? m[5] });
  }
  return seen;
}

/** Start tcpdump on the server's kw0 with `filter`; resolves once it is capturing. */
async function startCapture(lab: Lab, filter: string): Promise<() => Promise<Seen[]>> {
  const child = lab.spawn(lab.server, ['tcpdump', '-i', 'kw0', '--immediate-mode', '-n', '-tt', '-l', '-U', filter], { buffer: true });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += String(d);
      if (err.includes('listening on')) resolve();
    });
    void child.then((r) => reject(new Error(`tcpdump exited early (${r.exitCode}): ${err}`)));
  });
  return async () => {
    child.kill('SIGINT');
    const r = await child;
    return parseCapture(String(r.stdout ?? ''));
  };
}

async function knockCli(lab: Lab, args: string[]) {
  const started = performance.now();
  const r = await lab.run(lab.client, ['node', CLI, 'knock', ...args]);
  return { ...r, ms: performance.now() - started };
}

describeLab('knock client on the wire', () => {
  let lab: Lab;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
    lab = await createLab('knock');
    const rules = [
      'table inet kwknocktest {',
      '  chain in {',
      '    type filter hook input priority 0; policy accept;',
      `    tcp dport { 1000-2000, 4000-9999, ${DROPPED_PORT} } drop`,
      '  }',
      '}',
      // Its own table, so the test can lift it in one command.
      'table inet kwknocklate {',
      '  chain in {',
      '    type filter hook input priority -10; policy accept;',
      `    tcp dport ${LATE_PORT} reject with tcp reset`,
      '  }',
      '}',
    ].join('\n');
    const nft = await lab.run(lab.server, ['nft', '-f', '-'], { input: rules });
    if (nft.exitCode !== 0) throw new Error(`nft in the server namespace failed: ${nft.stderr}`);
    // One dual-stack listener on both check ports; it prints once it is listening.
    const script =
      "const net=require('net');let n=0;for(const port of process.argv.slice(1).map(Number))" +
      "net.createServer(s=>s.destroy()).listen({port,host:'::'},()=>{if(++n===2)console.log('listening')});";
    const listener = lab.spawn(lab.server, ['node', '-e', script, String(LISTEN_PORT), String(LATE_PORT)], { buffer: false });
    await new Promise<void>((resolve, reject) => {
      listener.stdout?.on('data', (d: Buffer) => {
        if (String(d).includes('listening')) resolve();
      });
      void listener.then((r) => reject(new Error(`listener exited early (${r.exitCode})`)));
    });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  // Without --source the kernel picks the address (for IPv6 not necessarily ::2): any client address.
  const cases = [
    { name: 'IPv4', host: '10.199.0.1', source: undefined, extra: [] as string[] },
    { name: 'IPv6', host: 'fd00:6b77::1', source: undefined, extra: ['-6'] },
    { name: 'IPv4 from the extra source address', host: '10.199.0.1', source: '10.199.0.3', extra: ['--source', '10.199.0.3'] },
    { name: 'IPv6 from the extra source address', host: 'fd00:6b77::1', source: 'fd00:6b77::3', extra: ['--source', 'fd00:6b77::3'] },
  ];

  for (const c of cases) {
    it(`${c.name}: one SYN per TCP step, one datagram per UDP step, in order, delay kept`, async () => {
      const stop = await startCapture(lab, `not src host ${c.host} and (tcp or udp)`);
      const delay = 150;
      const steps = ['1234', '5678:udp', '9012/tcp', '1234/udp', '1234'];
      const r = await knockCli(lab, [c.host, ...steps, '--delay', String(delay), '--payload', 'hello', ...c.extra]);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      // Past the 1 s SYN retransmission timeout: a lingering socket would show a second SYN.
      await sleep(1300);
      const seen = await stop();
      expect(seen.map((s) => `${s.port}/${s.protocol} ${s.detail}`)).toEqual([
        '1234/tcp Flags [S]',
        '5678/udp length 5',
        '9012/tcp Flags [S]',
        '1234/udp length 5',
        '1234/tcp Flags [S]',
      ]);
      expect(new Set(seen.map((s) => s.source)).size).toBe(1);
      if (c.source !== undefined) expect(seen[0].source).toBe(c.source);
      for (let i = 1; i < seen.length; i++) {
        const gapMs = (seen[i].time - seen[i - 1].time) * 1000;
        expect(gapMs).toBeGreaterThanOrEqual(delay - 5); // capture timestamps jitter by a few us, not ms
        expect(gapMs).toBeLessThan(delay + 250);
      }
    });
  }

  it('default delay 0 sends the whole sequence back to back, without waiting for any handshake', async () => {
    const stop = await startCapture(lab, 'src host 10.199.0.2 and (tcp or udp)');
    const ports = ['1001', '1002', '4001:udp', '1003', '4002/udp', '1004', '9999'];
    const r = await knockCli(lab, ['10.199.0.1', ...ports]);
    expect(r.exitCode).toBe(0);
    await sleep(1300);
    const seen = await stop();
    expect(seen.map((s) => `${s.port}/${s.protocol} ${s.detail}`)).toEqual([
      '1001/tcp Flags [S]',
      '1002/tcp Flags [S]',
      '4001/udp length 4',
      '1003/tcp Flags [S]',
      '4002/udp length 4',
      '1004/tcp Flags [S]',
      '9999/tcp Flags [S]',
    ]);
    // Every SYN is dropped: a client that awaited handshakes would take minutes.
    expect((seen[seen.length - 1].time - seen[0].time) * 1000).toBeLessThan(200);
  });

  it('-u makes protocol-less steps UDP', async () => {
    const stop = await startCapture(lab, 'src host 10.199.0.2 and (tcp or udp)');
    const r = await knockCli(lab, ['-u', '10.199.0.1', '4100', '1100:tcp', '4101']);
    expect(r.exitCode).toBe(0);
    await sleep(200);
    const seen = await stop();
    expect(seen.map((s) => `${s.port}/${s.protocol}`)).toEqual(['4100/udp', '1100/tcp', '4101/udp']);
  });

  it('--check reports refused for a port nobody listens on and no rule drops (exit 3), IPv4 and IPv6', async () => {
    const r = await knockCli(lab, ['10.199.0.1', '--check', String(CLOSED_PORT)]);
    expect(r.stdout).toBe(`10.199.0.1 port ${CLOSED_PORT}/tcp: refused`);
    expect(r.exitCode).toBe(3);
    const v6 = await knockCli(lab, ['fd00:6b77::1', '--check', String(CLOSED_PORT)]);
    expect(v6.stdout).toBe(`fd00:6b77::1 port ${CLOSED_PORT}/tcp: refused`);
    expect(v6.exitCode).toBe(3);
  });

  it('--check reports open for a port with a listener (exit 0), IPv4 and IPv6', async () => {
    const v4 = await knockCli(lab, ['10.199.0.1', '--check', String(LISTEN_PORT)]);
    expect(v4.exitCode).toBe(0);
    expect(v4.stdout).toBe(`10.199.0.1 port ${LISTEN_PORT}/tcp: open`);
    const v6 = await knockCli(lab, ['fd00:6b77::1', '1234', '--check', String(LISTEN_PORT), '--source', 'fd00:6b77::3']);
    expect(v6.exitCode).toBe(0);
    expect(v6.stdout).toBe(`fd00:6b77::1 port ${LISTEN_PORT}/tcp: open`);
  });

  it('--check reports filtered for a silently dropped port after --timeout (exit 4)', async () => {
    const r = await knockCli(lab, ['10.199.0.1', '--check', String(DROPPED_PORT), '--timeout', '600']);
    expect(r.stdout).toBe(`10.199.0.1 port ${DROPPED_PORT}/tcp: filtered`);
    expect(r.exitCode).toBe(4);
    expect(r.ms).toBeGreaterThanOrEqual(600);
    // Node start-up plus generous slack for a loaded 2-core machine: it must not hang on the dropped SYN.
    expect(r.ms).toBeLessThan(600 + 15_000);
  });

  it('--check after knocking, on a dropped port, is still filtered at the timeout (exit 4)', async () => {
    const r = await knockCli(lab, ['10.199.0.1', '1234', '--check', String(DROPPED_PORT), '--timeout', '600']);
    expect(r.stdout).toBe(`10.199.0.1 port ${DROPPED_PORT}/tcp: filtered`);
    expect(r.exitCode).toBe(4);
  });

  it('--check after knocking keeps trying while the port is refused, until it opens', async () => {
    const pending = knockCli(lab, ['10.199.0.1', '1234', '5678', '--check', String(LATE_PORT), '--timeout', '4000']);
    // Stands in for the daemon opening the door some time after the last knock.
    await sleep(700);
    const del = await lab.run(lab.server, ['nft', 'delete', 'table', 'inet', 'kwknocklate']);
    expect(del.exitCode).toBe(0);
    const r = await pending;
    expect(r.stdout).toBe(`10.199.0.1 port ${LATE_PORT}/tcp: open`);
    expect(r.exitCode).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(700);
  });

  it('a source address the client does not own fails with a clear error, sending nothing', async () => {
    const stop = await startCapture(lab, 'tcp or udp');
    const r = await knockCli(lab, ['10.199.0.1', '1234', '--source', '10.199.0.77']);
    await sleep(200);
    const seen = await stop();
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/TCP knock to \[10\.199\.0\.1\]:1234 failed: EADDRNOTAVAIL/);
    expect(seen).toEqual([]);
  });
});
