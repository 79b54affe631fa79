// Issue 8 items 9 and 10, through the BUILT command line: `knockwatch replay`
// on a hostile capture file must end with its summary, one clear error line
// naming the file and byte offset, and exit code 1, never a stack trace.
// - pcapng timestamps beyond the Date range (huge or negative if_tsoffset,
//   whole-second resolution with a 64-bit timestamp) used to pass the reader
//   and crash the output with an uncaught `RangeError: Invalid time value`.
// - interface descriptions used to pile up without limit (100 MB of them:
//   689 MB RSS); past 65,536 in a section is now an error.
// Needs no root; needs `npm run build`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/cli.js';
import { readCaptureBytes } from '../../../src/capture/file.js';
import { collectSync, concat, epb, idb, manyIdbs, shb, tsoffsetOpt, tsresolOpt, type OptionSpec } from '../../unit/capture-builders.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kw-replay-hostile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `knockwatch replay ARGS`. */
const replay = (args: readonly string[]): Promise<CliResult> => runCli(['replay', ...args]);

/** The ipv4-knock fixture's frames (they open door ssh) as one pcapng section whose interface has `opts`. */
function knocksWith(opts: OptionSpec[]): { bytes: Uint8Array; firstPacket: number } {
  const frames = collectSync(readCaptureBytes(readFileSync(join(ROOT, 'fixtures/ipv4-knock.pcap')), 'ipv4-knock.pcap')).frames;
  const head = concat(shb(true), idb(true, { linkType: frames[0].linkType, opts }));
  const packets = frames.map((f) => epb(true, { ts: BigInt(Math.round(f.time * 1000)), data: f.data }));
  return { bytes: concat(head, ...packets), firstPacket: head.length };
}

/** The run ended with the summary and exactly one error line, exit 1, no stack trace. */
function expectClearError(r: CliResult, path: string, offset: number, problem: RegExp): void {
  expect(r.stderr).not.toMatch(/RangeError|Error:|^\s+at /m);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(2);
  expect(lines[0]).toMatch(/^packets \d+, knocks \d+, malformed \d+, opens \d+, elapsed /);
  expect(lines[1].startsWith(`knockwatch replay: ${path}: byte ${offset}: `), lines[1]).toBe(true);
  expect(lines[1]).toMatch(problem);
  expect(r.code).toBe(1);
}

describe('replay: hostile pcapng files end in one clear error line', () => {
  const cases: [string, OptionSpec[]][] = [
    ['if_tsoffset 2^63-1 s', [tsoffsetOpt(true, 2n ** 63n - 1n)]],
    ['if_tsoffset -2^63 s', [tsoffsetOpt(true, -(2n ** 63n))]],
    ['whole seconds (if_tsresol 10^0)', [tsresolOpt(0)]],
  ];
  for (const [name, opts] of cases) {
    for (const json of [false, true]) {
      it(`${name}${json ? ', --json' : ''}: no RangeError, summary, error at the first packet`, async () => {
        const { bytes, firstPacket } = knocksWith(opts);
        const path = join(dir, `ts-${cases.findIndex((c) => c[0] === name)}${json ? '-json' : ''}.pcapng`);
        writeFileSync(path, bytes);
        const r = await replay(json ? [path, '--json'] : [path]);
        expectClearError(r, path, firstPacket, /enhanced packet block timestamp \d+ \(interface 0: .*\) lies outside 1970-01-01T00:00:00\.000Z to 9999-12-31T23:59:59\.999Z$/);
        expect(r.stdout).toBe('');
      });
    }
  }

  it('65,537 interface descriptions in one section: an error at the 65,537th', async () => {
    const path = join(dir, 'many-idbs.pcapng');
    writeFileSync(path, concat(manyIdbs(true, 65_537), epb(true, { ts: 1n, data: new Uint8Array(14) })));
    const r = await replay([path]);
    expectClearError(r, path, 28 + 65_536 * 20, /interface description block would be the 65537th in its section; at most 65536 are accepted$/);
  });
});
