// openLiveCapture's side of the capture process, with a stand-in process
// script (no cap, no root): frames, errors, death and stopping.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, take, toArray } from 'rxjs';
import { LiveCaptureError, isFatalCaptureError, openLiveCapture, type LiveCaptureOptions } from '../../src/capture/live.js';
import { createRecordWriter } from '../../src/capture/live-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Stand-in for live-child.js: writes the records given in KW_FAKE_RECORDS
// (base64), echoes its options to stderr, then acts out KW_FAKE_MODE.
const FAKE = join(dir, 'fake-child.mjs');
writeFileSync(
  FAKE,
  `import { writeSync } from 'node:fs';
const opts = JSON.parse(process.argv[2]);
process.stderr.write('options ' + JSON.stringify(opts) + '\\n');
writeSync(1, Buffer.from(process.env.KW_FAKE_RECORDS ?? '', 'base64'));
const mode = process.env.KW_FAKE_MODE;
if (mode === 'exit') process.exit(Number(process.env.KW_FAKE_CODE ?? 0));
if (mode === 'abort') { process.stderr.write("node: ../src/binding.cc:190: Assertion \`status == 0' failed.\\n"); process.abort(); }
if (mode === 'garbage') { writeSync(1, Buffer.alloc(40, 0xee)); }
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
setInterval(() => {}, 1000);
`,
);

function records(fill: (w: ReturnType<typeof createRecordWriter>) => void): string {
  const parts: Buffer[] = [];
  const w = createRecordWriter((b) => parts.push(Buffer.from(b)));
  fill(w);
  w.flush();
  return Buffer.concat(parts).toString('base64');
}

function fake(mode: string, recs: string, code = 0): void {
  process.env.KW_FAKE_MODE = mode;
  process.env.KW_FAKE_RECORDS = recs;
  process.env.KW_FAKE_CODE = String(code);
}

const BASE: LiveCaptureOptions = { interface: 'kw0', filter: 'udp', childScript: FAKE };

async function errorOf(options: LiveCaptureOptions): Promise<LiveCaptureError> {
  try {
    await firstValueFrom(openLiveCapture(options));
  } catch (err) {
    return err as LiveCaptureError;
  }
  throw new Error('expected an error');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('openLiveCapture (stand-in capture process)', () => {
  it('delivers frames with the link type from the opened record, and stops the process once', async () => {
    const data = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    fake(
      'wait',
      records((w) => {
        w.opened(113);
        w.frame(1_700_000_000_001.25, data, 4, 60);
        w.frame(1_700_000_000_002.5, data, 2, 2);
      }),
    );
    let pid = -1;
    let linkType = -1;
    const frames = await firstValueFrom(
      openLiveCapture({ ...BASE, onOpened: (i) => ((pid = i.pid), (linkType = i.linkType)) }).pipe(take(2), toArray()),
    );
    expect(linkType).toBe(113);
    expect(frames.map((f) => [f.time, f.linkType, f.origLength, f.offset, [...f.data]])).toEqual([
      [1_700_000_000_001.25, 113, 60, -1, [0xde, 0xad, 0xbe, 0xef]],
      [1_700_000_000_002.5, 113, 2, -1, [0xde, 0xad]],
    ]);
    // take(2) unsubscribed: the process must go away.
    for (let i = 0; i < 50 && alive(pid); i += 1) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });

  it('stamps frames with the given clock instead', async () => {
    fake('wait', records((w) => (w.opened(1), w.frame(5, Buffer.from([1]), 1, 1))));
    const f = await firstValueFrom(openLiveCapture({ ...BASE, clock: () => 42 }));
    expect(f.time).toBe(42);
  });

  it('passes interface, filter and sizes to the process', async () => {
    fake('exit', '', 9);
    const err = await errorOf({ ...BASE, snaplen: 128, bufferSize: 1 << 20, backlogBytes: 1 << 17 });
    expect(err.message).toContain('options {"interface":"kw0","filter":"udp","snaplen":128,"bufferSize":1048576,"backlogBytes":131072}');
  });

  it('reports the capture process\'s counters with the frames delivered here, and once more when stopped (issue 8 item 8)', async () => {
    const data = Buffer.from([1, 2, 3, 4]);
    fake(
      'wait',
      records((w) => {
        w.opened(1);
        w.frame(1, data, 4, 4);
        w.counters({ captured: 5, shed: 2, backlogBytes: 100, maxBacklogBytes: 4000, interfaceDrops: 1 });
        w.frame(2, data, 4, 4);
      }),
    );
    const seen: object[] = [];
    const frames = await firstValueFrom(openLiveCapture({ ...BASE, onCounters: (c) => seen.push(c) }).pipe(take(2), toArray()));
    expect(frames.map((f) => f.time)).toEqual([1, 2]);
    expect(seen).toEqual([
      { captured: 5, shed: 2, backlogBytes: 100, maxBacklogBytes: 4000, interfaceDrops: 1, delivered: 1 },
      { captured: 5, shed: 2, backlogBytes: 100, maxBacklogBytes: 4000, interfaceDrops: 1, delivered: 2 },
    ]);
  });

  it('refuses a backlog outside 64 KiB - 1 GiB', async () => {
    const err = await errorOf({ ...BASE, backlogBytes: 1000 });
    expect(err.message).toMatch(/backlogBytes must be an integer from 65536/);
  });

  it('turns an error record into a LiveCaptureError of its kind, with a hint', async () => {
    fake('exit', records((w) => w.error({ kind: 'permission', message: 'socket: Operation not permitted' })), 3);
    const perm = await errorOf(BASE);
    expect(perm).toBeInstanceOf(LiveCaptureError);
    expect(perm.kind).toBe('permission');
    expect(perm.interfaceName).toBe('kw0');
    expect(perm.message).toBe('cannot open live capture on interface "kw0": socket: Operation not permitted (capturing needs root, or CAP_NET_RAW and CAP_NET_ADMIN)');
    expect(isFatalCaptureError(perm)).toBe(true);

    fake('exit', records((w) => w.error({ kind: 'filter', message: 'syntax error in filter expression' })), 3);
    const filter = await errorOf({ ...BASE, filter: 'udp and bogus(' });
    expect(filter.kind).toBe('filter');
    expect(filter.message).toContain('(filter: udp and bogus()');

    fake('exit', records((w) => w.error({ kind: 'not-up', message: 'That device is not up' })), 3);
    const down = await errorOf(BASE);
    expect(down.kind).toBe('not-up');
    expect(isFatalCaptureError(down)).toBe(false);
  });

  it('reports a process that aborted while capturing as died, naming the likely cause', async () => {
    fake('abort', records((w) => w.opened(1)));
    const err = await errorOf(BASE);
    expect(err.kind).toBe('died');
    expect(err.message).toMatch(/capture process was killed by SIGABRT while capturing: libpcap reported an error on the capture socket/);
    expect(isFatalCaptureError(err)).toBe(false);
  });

  it('reports a process that exited before opening, with its stderr', async () => {
    fake('exit', '', 1);
    const err = await errorOf(BASE);
    expect(err.kind).toBe('died');
    expect(err.message).toMatch(/exited with code 1 before the capture opened; its stderr: options/);
  });

  it('fails on a corrupt stream with the byte offset', async () => {
    fake('garbage', records((w) => w.opened(1)));
    const err = await errorOf(BASE);
    expect(err.message).toMatch(/unknown record kind 238 at byte offset 20/);
  });

  it('rejects bad options before starting anything', async () => {
    expect((await errorOf({ ...BASE, interface: 'a/b' })).message).toMatch(/invalid interface name "a\/b"/);
    expect((await errorOf({ ...BASE, snaplen: 0 })).message).toMatch(/snaplen must be an integer 1-65535, got 0/);
    expect((await errorOf({ ...BASE, bufferSize: 10 })).message).toMatch(/bufferSize must be an integer/);
    const missing = await errorOf({ ...BASE, childScript: join(dir, 'nope.js') });
    expect(missing.message).toMatch(/nope\.js not found \(run npm run build\)/);
    expect(isFatalCaptureError(missing)).toBe(true);
  });
});
