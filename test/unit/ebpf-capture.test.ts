// openEbpfCapture's process handling, against fake loaders (small Node
// scripts that speak the loader's stdout format). The real loader and kernel
// program are exercised in test/e2e/ebpf-capture.test.ts.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstValueFrom, toArray, take } from 'rxjs';
import {
  type EbpfCounters,
  type EbpfExit,
  type EbpfInterface,
  ebpfUnavailableReason,
  loaderArgs,
  openEbpfCapture,
} from '../../src/capture/ebpf.js';
import type { Frame } from '../../src/types.js';
import { counterRecord, frameRecord, readyRecord } from './ebpf-support.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-ebpf-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const packet = Uint8Array.from({ length: 54 }, (_, i) => (i * 7) & 0xff);

/** Writes an executable fake loader whose body runs with `out(hexString)` and `argv` available. */
function fakeLoader(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/usr/bin/env node
const out = (h) => process.stdout.write(Buffer.from(h, 'hex'));
const argv = process.argv.slice(2);
${body}
`,
  );
  chmodSync(path, 0o755);
  return path;
}

const steps = [{ port: 1234, protocol: 'tcp' as const }];

describe('openEbpfCapture with a fake loader', () => {
  it('emits frames, reports ready and counters, and stops the loader on unsubscribe', async () => {
    const argsFile = join(dir, 'args.json');
    const loader = fakeLoader(
      'normal',
      `require('node:fs').writeFileSync(${JSON.stringify(argsFile)}, JSON.stringify(argv));
process.on('SIGTERM', () => { out('${hex(counterRecord({ seen: 120, candidates: 3, events: 1, drops: 0 }))}'); process.exit(0); });
out('${hex(readyRecord([{ name: 'kw0', ifindex: 4, linkType: 1 }]))}');
out('${hex(frameRecord({ timeNs: 1_700_000_000_000_000_000n, wireLength: 54, ifindex: 4, linkType: 1, data: packet }))}');
out('${hex(counterRecord({ seen: 100, candidates: 3, events: 1, drops: 0 }))}');
setInterval(() => {}, 1000);`,
    );
    let ready: readonly EbpfInterface[] | undefined;
    const counters: EbpfCounters[] = [];
    let exited: (e: EbpfExit) => void = () => {};
    const exit = new Promise<EbpfExit>((resolve) => (exited = resolve));
    const frame: Frame = await firstValueFrom(
      openEbpfCapture({
        interfaces: ['kw0'],
        steps: [...steps, { port: 5678, protocol: 'udp' }, { port: 1234, protocol: 'tcp' }],
        hook: 'tc',
        loaderPath: loader,
        onReady: (i) => (ready = i),
        onCounters: (c) => counters.push(c),
        onExit: exited,
      }),
    );
    expect(frame.linkType).toBe(1);
    expect(frame.time).toBe(1_700_000_000_000);
    expect(hex(frame.data)).toBe(hex(packet));
    expect(ready).toEqual([{ name: 'kw0', ifindex: 4, linkType: 1 }]);
    // firstValueFrom unsubscribed after the frame: the loader gets SIGTERM and
    // its final counters still arrive.
    const e = await exit;
    expect(e.exitCode).toBe(0);
    expect(e.counters?.seen).toBe(120);
    expect(counters.at(-1)?.seen).toBe(120);
    expect(JSON.parse(readFileSync(argsFile, 'utf8'))).toEqual([
      '--ifname', 'kw0', '--port', '1234/tcp', '--port', '5678/udp', '--hook', 'tc',
    ]);
  });

  it('errors with the loader\'s own explanation when it fails to start', async () => {
    const loader = fakeLoader(
      'nostart',
      `process.stderr.write("warn: libbpf: something\\nerror: interface 'nope' does not exist in this network namespace\\n");
process.exit(1);`,
    );
    const logged: string[] = [];
    const log = (o: object, m?: string): void => void logged.push(m ?? '');
    await expect(
      firstValueFrom(openEbpfCapture({ interfaces: 'nope', steps, loaderPath: loader, logger: { debug: log, info: log, warn: log, error: log } })),
    ).rejects.toThrow("eBPF capture failed to start: loader exited with code 1: interface 'nope' does not exist in this network namespace");
    expect(logged).toContain('libbpf: something');
  });

  it('errors when the loader exits on its own after starting', async () => {
    const loader = fakeLoader(
      'dies',
      `out('${hex(readyRecord([{ name: 'kw0', ifindex: 4, linkType: 1 }]))}');
setTimeout(() => { process.stderr.write('error: poll: bad things\\n'); process.exit(3); }, 50);`,
    );
    await expect(firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: loader }))).rejects.toThrow(
      'eBPF loader exited with code 3: poll: bad things',
    );
  });

  it('errors naming the byte offset of a corrupt record, and kills the loader', async () => {
    const good = readyRecord([{ name: 'kw0', ifindex: 4, linkType: 1 }]);
    const loader = fakeLoader(
      'corrupt',
      `out('${hex(good)}');
out('0400000063000000deadbeef');
setInterval(() => {}, 1000);`,
    );
    let exited: (e: EbpfExit) => void = () => {};
    const exit = new Promise<EbpfExit>((resolve) => (exited = resolve));
    await expect(firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: loader, onExit: exited }))).rejects.toThrow(
      `eBPF loader output: byte ${good.length}: unknown record type 99`,
    );
    expect((await exit).signal).toBe('SIGTERM');
  });

  it('says how to build the loader when it is missing', async () => {
    expect(await ebpfUnavailableReason(join(dir, 'absent'))).toMatch(/not found; build it with `knockwatch setup-ebpf` \(in a source checkout: `npm run build:ebpf`; Debian packages: clang /);
  });

  it('errors with build instructions when the loader is missing', async () => {
    await expect(
      firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: join(dir, 'absent') })),
    ).rejects.toThrow(/loader .*absent not found; build it with `knockwatch setup-ebpf`/);
  });

  it('errors when the loader file cannot be executed', async () => {
    const path = join(dir, 'plain');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    await expect(firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: path }))).rejects.toThrow(
      /loader .*plain is not executable \(EACCES\)/,
    );
    // A directory passes the access check but cannot be spawned.
    await expect(firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: dir }))).rejects.toThrow(
      /eBPF capture failed to start: loader could not be run: .*EACCES/,
    );
  });

  it('delivers many frames split across pipe chunks in order', async () => {
    const n = 2000;
    const loader = fakeLoader(
      'many',
      `const rec = Buffer.from('${hex(frameRecord({ timeNs: 0n, wireLength: 54, ifindex: 4, linkType: 1, data: packet }))}', 'hex');
const all = [];
for (let i = 0; i < ${n}; i++) { const r = Buffer.from(rec); r.writeBigUInt64LE(BigInt(i) * 1000000n, 8); all.push(r); }
process.stdout.write(Buffer.concat(all));
setInterval(() => {}, 1000);`,
    );
    const frames = await firstValueFrom(openEbpfCapture({ interfaces: 'kw0', steps, loaderPath: loader }).pipe(take(n), toArray()));
    expect(frames.map((f) => f.time)).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});

describe('loaderArgs', () => {
  it('accepts any and deduplicates interfaces and ports', () => {
    expect(
      loaderArgs({ interfaces: ['any', 'any'], steps: [...steps, ...steps], netns: 'lab', maxSources: 1000, statsIntervalMs: 250 }),
    ).toEqual(['--ifname', 'any', '--port', '1234/tcp', '--netns', 'lab', '--max-active', '1000', '--stats-ms', '250']);
  });

  it('marks first steps and passes open ports that are not steps', () => {
    const tcp = (port: number) => ({ port, protocol: 'tcp' as const });
    expect(
      loaderArgs({ interfaces: 'kw0', steps: [tcp(1234), tcp(5678), tcp(22)], firstSteps: [tcp(1234), tcp(22)], openPorts: [tcp(2222), tcp(5678), tcp(2222)] }),
    ).toEqual(['--ifname', 'kw0', '--first', '1234/tcp', '--port', '5678/tcp', '--first', '22/tcp', '--open', '2222/tcp']);
  });

  it('rejects what the loader could misread or the kernel cannot do', () => {
    expect(() => loaderArgs({ interfaces: [], steps })).toThrow('no interface given');
    expect(() => loaderArgs({ interfaces: '--port', steps })).toThrow("invalid interface name '--port'");
    expect(() => loaderArgs({ interfaces: 'a/b', steps })).toThrow("invalid interface name 'a/b'");
    expect(() => loaderArgs({ interfaces: 'x'.repeat(16), steps })).toThrow('invalid interface name');
    expect(() => loaderArgs({ interfaces: 'kw0', steps: [] })).toThrow('no knock ports to watch');
    expect(() => loaderArgs({ interfaces: 'kw0', steps: [{ port: 0, protocol: 'tcp' }] })).toThrow('invalid knock port');
    expect(() => loaderArgs({ interfaces: 'kw0', steps: [{ port: 70000, protocol: 'udp' }] })).toThrow('invalid knock port');
    expect(() => loaderArgs({ interfaces: 'kw0', steps, maxSources: 0 })).toThrow('maxSources 0');
    // Steps without any first step (spa doors only): every step goes as --port, which the loader treats as a first step.
    expect(loaderArgs({ interfaces: 'kw0', steps, firstSteps: [] })).not.toContain('--first');
    expect(() => loaderArgs({ interfaces: 'kw0', steps, firstSteps: [{ port: 9, protocol: 'tcp' }] })).toThrow('first step 9/tcp is not among the knock ports');
    expect(() => loaderArgs({ interfaces: 'kw0', steps, openPorts: [{ port: 0, protocol: 'udp' }] })).toThrow('invalid open port');
  });
});

// What the loader is told to watch is derived from the doors by detect's
// captureNeeds() (test/unit/detect-capture-needs.test.ts).
describe('loaderArgs protocols', () => {
  it('passes the protocols to the loader as the pcap filter has them', () => {
    const steps = [{ port: 1234, protocol: 'tcp' as const }];
    expect(loaderArgs({ interfaces: 'kw0', steps, protocols: ['udp', 'tcp'] })).toEqual(['--ifname', 'kw0', '--port', '1234/tcp', '--protocol', 'tcp', '--protocol', 'udp']);
    expect(loaderArgs({ interfaces: 'kw0', steps })).not.toContain('--protocol');
  });
});
