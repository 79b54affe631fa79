// The long-lived `nft -i` session, against a fake nft (a node script that
// answers like nft and misbehaves on marker addresses), with the nftables
// adapter's fallback going to a recording runner.
import { afterEach, describe, expect, it } from 'vitest';
import { createFirewall, type FirewallAdapter } from '../../src/firewall/index.js';
import { buildNftClose, buildNftOpen } from '../../src/firewall/nftables.js';
import { createNftSession, sessionLine, type NftSession, type NftSessionTuning } from '../../src/firewall/nft-session.js';
import { FirewallError, type Access } from '../../src/firewall/types.js';
import { recorder, sshDoor, type Recorder } from './firewall-support.js';
import { alive, EXIT_SOURCE, FAIL_SOURCE, fakeNft, HANG_SOURCE, NOISE_SOURCE, waitFor, type FakeNft, type FakeNftConfig } from './firewall-session-support.js';

const NOW = 1_700_000_000_000;
const now = (): number => NOW;
/** What `nft list set` shows after the init probe on a kernel that updates timeouts ('add' mode). */
const PROBE_UPDATED = 'table inet knockwatch {\n\tset timeout_probe {\n\t\telements = { 1 timeout 2h expires 1h59m59s996ms }\n\t}\n}\n';
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const access = (source: string, ms = 20_000): Access => ({ door: 'ssh', source, family: 4, ports: sshDoor.open, until: NOW + ms });
const openText = (source: string, ms = 20_000): string => buildNftOpen('knockwatch', access(source), ms, 'add');

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(cfg: FakeNftConfig = {}): Promise<FakeNft> {
  const f = await fakeNft(cfg);
  cleanups.push(() => f.remove());
  return f;
}

/**
 * An initialised nftables adapter whose session runs the fake and whose
 * fallback (nft -f -) is recorded; `answer` may fail or observe fallbacks.
 */
async function adapter(
  f: FakeNft,
  tuning: NftSessionTuning = {},
  answer: Parameters<typeof recorder>[0] = () => undefined,
): Promise<{ fw: FirewallAdapter; rec: Recorder }> {
  const rec = recorder((req) => answer(req) ?? (req.args[0] === 'list' ? { stdout: PROBE_UPDATED } : undefined));
  const fw = createFirewall('nftables', { runner: rec.runner, now, binaries: { nft: f.path }, nftSession: { timeoutMs: 3000, ...tuning } });
  cleanups.push(() => fw.shutdown());
  await fw.init([sshDoor]);
  rec.calls.length = 0; // the init commands
  return { fw, rec };
}

function session(f: FakeNft, tuning: NftSessionTuning = {}): NftSession {
  const s = createNftSession({ nft: f.path, logger: silent, timeoutMs: 3000, ...tuning });
  cleanups.push(() => s.stop());
  return s;
}

describe('sessionLine', () => {
  it('joins a transaction into one line that nft -i runs as one transaction', () => {
    const text = buildNftClose('knockwatch', { door: 'ssh', source: 'fd00:6b77::2', family: 6, ports: sshDoor.open });
    expect(sessionLine(text)).toBe(
      'add element inet knockwatch v6_ssh { fd00:6b77::2 . tcp . 2222 timeout 1s }; delete element inet knockwatch v6_ssh { fd00:6b77::2 . tcp . 2222 }',
    );
    expect(sessionLine(buildNftOpen('knockwatch', access('10.0.0.2'), 20_000, 'replace')).split('; ')).toHaveLength(3);
  });
  it('refuses anything that would parse differently on one line', () => {
    expect(() => sessionLine('add element inet t s { 1 } # x\ndelete element inet t s { 1 }\n')).toThrow(FirewallError);
    expect(() => sessionLine('add element inet t s { 1 }; flush ruleset\n')).toThrow(/line 1 .*characters/);
    expect(() => sessionLine('add element inet t s { 1 }\r\n')).toThrow(FirewallError);
    expect(() => sessionLine('add rule inet t c meta mark "x"\n')).toThrow(FirewallError);
    expect(() => sessionLine('\n\n')).toThrow(/empty transaction/);
  });
});

describe('nft session in the nftables adapter', () => {
  it('open and close go through the running session: no process spawned, the validated text on one line', async () => {
    const f = await fake();
    const { fw, rec } = await adapter(f);
    await fw.open(access('10.0.0.2'));
    await fw.close(access('10.0.0.2'));
    expect(rec.calls).toHaveLength(0);
    expect(await f.starts()).toHaveLength(1);
    expect(await f.lines()).toEqual([sessionLine(openText('10.0.0.2')), sessionLine(buildNftClose('knockwatch', access('10.0.0.2')))]);
    expect(await f.lines()).toEqual([
      'add element inet knockwatch v4_ssh { 10.0.0.2 . tcp . 2222 timeout 20s expires 20s }',
      'add element inet knockwatch v4_ssh { 10.0.0.2 . tcp . 2222 timeout 1s }; delete element inet knockwatch v4_ssh { 10.0.0.2 . tcp . 2222 }',
    ]);
    const [start] = await f.events();
    // Interactive mode; history written nowhere; English messages.
    expect(start).toMatchObject({ event: 'start', argv: ['-i'], home: '/dev/null', lcAll: 'C' });
  });

  it('opens made together are ONE transaction: a few as one session line, many as one nft -f - (cheaper for long lines)', async () => {
    const f = await fake();
    const { fw, rec } = await adapter(f);
    await waitFor(async () => (await f.starts()).length === 1, 10_000, 'the session to start');
    // 10.2.x.y: clear of the fake's misbehaving addresses (10.0.0.55-99).
    const few = Array.from({ length: 20 }, (_, i) => `10.2.0.${i + 1}`);
    await Promise.all(few.map((src) => fw.open(access(src))));
    expect(rec.calls).toHaveLength(0);
    expect(await f.lines()).toEqual([`add element inet knockwatch v4_ssh { ${few.map((src) => `${src} . tcp . 2222 timeout 20s expires 20s`).join(', ')} }`]);
    const many = Array.from({ length: 200 }, (_, i) => `10.3.${i >> 8}.${(i & 255) + 1}`);
    await Promise.all(many.map((src) => fw.open(access(src))));
    expect(await f.lines()).toHaveLength(1);
    expect(rec.calls.map((c) => c.input)).toEqual([`add element inet knockwatch v4_ssh { ${many.map((src) => `${src} . tcp . 2222 timeout 20s expires 20s`).join(', ')} }\n`]);
  });

  it('is started at init, so the first knock does not wait for nft to start', async () => {
    const f = await fake();
    await adapter(f);
    await waitFor(async () => (await f.starts()).length === 1, 3000, 'the session to start at init');
    expect(await f.lines()).toEqual([]);
  });

  it('an error on stderr: the same text goes through nft -f -, whose error is the one reported', async () => {
    const f = await fake();
    const full = { exitCode: 1, stderr: 'Error: Could not process rule: Too many open files in system\n' };
    const { fw, rec } = await adapter(f, { backoffMs: 10 }, (req) => (req.input?.includes(FAIL_SOURCE) ? full : undefined));
    await fw.open(access('10.0.0.2'));
    const [first] = await f.starts();
    const err = await fw.open(access(FAIL_SOURCE)).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'FirewallCommandError', exitCode: 1, command: `${f.path} -f -`, input: openText(FAIL_SOURCE) });
    expect((err as Error).message).toMatch(/failed \(exit 1\): Error: Could not process rule: Too many open files in system$/);
    expect(rec.calls.map((c) => c.input)).toEqual([openText(FAIL_SOURCE)]);
    expect(await f.lines()).toEqual([sessionLine(openText('10.0.0.2')), sessionLine(openText(FAIL_SOURCE))]);
    // nft answered the marker after the error, so the process is in a known state and keeps serving.
    await fw.open(access('10.0.0.3'));
    expect(rec.calls).toHaveLength(1);
    expect(await f.starts()).toEqual([first]);
    expect(alive(first)).toBe(true);
  });

  it('no answer in time: the process is killed before nft -f - runs the same text; the next open uses a new process', async () => {
    const f = await fake();
    let first = 0;
    let firstGoneAtFallback: boolean | undefined;
    // 2 s: the next process (a node script) must start and answer within it on a busy machine.
    const { fw, rec } = await adapter(f, { timeoutMs: 2000, backoffMs: 50 }, (req) => {
      if (req.input?.includes(HANG_SOURCE)) firstGoneAtFallback = !alive(first);
      return undefined;
    });
    await waitFor(async () => (await f.starts()).length === 1, 10_000, 'the session to start');
    await fw.open(access('10.0.0.2')); // the session is up and answering
    expect(rec.calls).toHaveLength(0);
    [first] = await f.starts();
    const t0 = Date.now();
    await fw.open(access(HANG_SOURCE));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1990);
    expect(rec.calls.map((c) => c.input)).toEqual([openText(HANG_SOURCE)]);
    // Reaped before the fallback ran: a late commit can never follow it.
    expect(firstGoneAtFallback).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    await fw.open(access('10.0.0.3'));
    expect(rec.calls).toHaveLength(1); // through a new session, not the fallback
    const events = await f.events();
    const starts = events.filter((e) => e.event === 'start').map((e) => e.pid);
    expect(starts).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ event: 'line', pid: starts[1], line: sessionLine(openText('10.0.0.3')) });
  });

  it('death: falls back at once, stays on nft -f - during the backoff, then starts a new process', async () => {
    const f = await fake();
    const { fw, rec } = await adapter(f, { backoffMs: 400 });
    await fw.open(access('10.0.0.2'));
    await fw.open(access(EXIT_SOURCE));
    expect(rec.calls.map((c) => c.input)).toEqual([openText(EXIT_SOURCE)]);
    // Within the backoff: no new process, every operation still works.
    await fw.open(access('10.0.0.3'));
    await fw.close(access('10.0.0.3'));
    expect(rec.calls.map((c) => c.input)).toEqual([openText(EXIT_SOURCE), openText('10.0.0.3'), buildNftClose('knockwatch', access('10.0.0.3'))]);
    expect(await f.starts()).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 450));
    await fw.open(access('10.0.0.4'));
    expect(rec.calls).toHaveLength(3);
    expect(await f.starts()).toHaveLength(2);
  });

  it('a broken nft is restarted with a doubling backoff, not in a loop; every open still succeeds', async () => {
    const f = await fake({ brokenStart: true });
    const backoffMs = 40;
    const { fw, rec } = await adapter(f, { backoffMs, maxBackoffMs: 10_000 });
    const opens = 40;
    const t0 = Date.now();
    for (let i = 0; i < opens; i++) {
      await fw.open(access(`10.0.1.${i + 1}`));
      await new Promise((r) => setTimeout(r, 10));
    }
    const elapsed = Date.now() - t0;
    expect(rec.calls).toHaveLength(opens);
    // Starts at 0, b, 3b, 7b, ... (+ the processes' own start-up time): within
    // `elapsed` at most log2(elapsed / b + 1) + 1 of them, however slow the
    // machine; without a backoff, one per open. (The open rate is bench material.)
    const starts = (await f.starts()).length;
    expect(starts).toBeGreaterThanOrEqual(2);
    expect(starts).toBeLessThanOrEqual(Math.floor(Math.log2(elapsed / backoffMs + 1)) + 1);
    expect(starts).toBeLessThan(opens);
  });

  it('shutdown closes the session stdin and the process exits', async () => {
    const f = await fake();
    const { fw, rec } = await adapter(f);
    await fw.open(access('10.0.0.2'));
    const [pid] = await f.starts();
    expect(alive(pid)).toBe(true);
    await fw.shutdown();
    expect(alive(pid)).toBe(false);
    expect((await f.events()).map((e) => e.event)).toEqual(['start', 'line', 'eof']);
    expect(rec.calls.map((c) => c.input)).toEqual(['table inet knockwatch {}\ndelete table inet knockwatch\n']);
  });

  it('with an injected runner and no nftSession option, nothing is spawned', async () => {
    const f = await fake();
    const rec = recorder((req) => (req.args[0] === 'list' ? { stdout: PROBE_UPDATED } : undefined));
    const fw = createFirewall('nftables', { runner: rec.runner, now, binaries: { nft: f.path } });
    await fw.init([sshDoor]);
    await fw.open(access('10.0.0.2'));
    await fw.shutdown();
    expect(await f.events()).toEqual([]);
    expect(rec.calls.map((c) => c.args.join(' '))).toEqual(['-f -', 'add element inet knockwatch timeout_probe { 1 timeout 2h }', 'list set inet knockwatch timeout_probe', 'delete set inet knockwatch timeout_probe', '-f -', '-f -']);
  });
});

describe('nft session process handling', () => {
  it('queues: one command in flight at a time, answered in call order', async () => {
    const f = await fake({ delayMs: 15 });
    const s = session(f);
    const sources = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'];
    const results = await Promise.all(sources.map((src) => s.apply(openText(src))));
    expect(results.every((r) => r.ok)).toBe(true);
    const lines = (await f.events()).filter((e) => e.event === 'line');
    expect(lines.map((e) => e.line)).toEqual(sources.map((src) => sessionLine(openText(src))));
    expect(lines.some((e) => e.overlap)).toBe(false);
  });

  it('answers unknown, never rejects, for text it will not send', async () => {
    const f = await fake();
    const s = session(f);
    expect(await s.apply('add element inet t s { 1 } # comment\n')).toMatchObject({ ok: false, reason: expect.stringMatching(/characters/) as string });
    expect(await f.lines()).toEqual([]);
  });

  it('reports why when the binary cannot be started', async () => {
    const s = createNftSession({ nft: '/nonexistent/nft', logger: silent, backoffMs: 10_000 });
    cleanups.push(() => s.stop());
    const r = await s.apply(openText('10.0.0.2'));
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/could not run \/nonexistent\/nft: .*ENOENT/) as string });
    expect(await s.apply(openText('10.0.0.2'))).toMatchObject({ ok: false, reason: expect.stringMatching(/restarts in \d+ ms \(after 1 failure\)/) as string });
  });

  it('stop(): a process that ignores EOF is SIGKILLed after the grace', async () => {
    const f = await fake({ ignoreEof: true });
    const s = session(f, { graceMs: 200 });
    expect((await s.apply(openText('10.0.0.2'))).ok).toBe(true);
    const pid = s.pid as number;
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(alive(pid)).toBe(false);
    expect((await f.events()).map((e) => e.event)).toEqual(['start', 'line', 'eof']);
    expect(s.pid).toBeUndefined();
  });

  it('replaces the process after maxCommands, without failing a command', async () => {
    const f = await fake();
    const s = session(f, { maxCommands: 2 });
    for (const src of ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']) expect((await s.apply(openText(src))).ok).toBe(true);
    const events = await f.events();
    const starts = events.filter((e) => e.event === 'start').map((e) => e.pid);
    expect(starts).toHaveLength(3);
    expect(events.filter((e) => e.event === 'line').map((e) => starts.indexOf(e.pid))).toEqual([0, 0, 1, 1, 2]);
    await waitFor(() => !alive(starts[0]) && !alive(starts[1]), 3000, 'replaced processes to exit');
  });

  it('replaces the process after maxBytes of input too (batches are long lines)', async () => {
    const f = await fake();
    const line = sessionLine(openText('10.0.0.2'));
    // Two commands (each with its marker line) pass the limit; the third goes to a new process.
    const s = session(f, { maxBytes: 2 * line.length });
    for (const src of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) expect((await s.apply(openText(src))).ok).toBe(true);
    const events = await f.events();
    const starts = events.filter((e) => e.event === 'start').map((e) => e.pid);
    expect(events.filter((e) => e.event === 'line').map((e) => starts.indexOf(e.pid))).toEqual([0, 0, 1]);
  });

  it("a command's error: unknown with what nft said, and the process keeps serving", async () => {
    const f = await fake();
    const s = session(f);
    expect((await s.apply(openText('10.0.0.2'))).ok).toBe(true);
    const pid = s.pid as number;
    const r = await s.apply(openText(FAIL_SOURCE));
    expect(r).toEqual({
      ok: false,
      reason: `nft: Error: Could not process rule: Too many open files in system\n${sessionLine(openText(FAIL_SOURCE))}\n${' '.repeat(sessionLine(openText(FAIL_SOURCE)).length)}^`,
    });
    expect((await s.apply(openText('10.0.0.3'))).ok).toBe(true);
    expect(s.pid).toBe(pid);
  });

  it('stderr that belongs to no command puts the session in doubt: it is replaced', async () => {
    const f = await fake();
    const s = session(f, { backoffMs: 10 });
    expect((await s.apply(openText(NOISE_SOURCE))).ok).toBe(true);
    const pid = s.pid as number;
    await waitFor(() => !alive(pid), 3000, 'the noisy session to be killed');
    expect(s.pid).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect((await s.apply(openText('10.0.0.3'))).ok).toBe(true);
    expect(s.pid).not.toBe(pid);
    expect(await f.starts()).toHaveLength(2);
  });
});
