// How frames get in: files (progress, stats, unsubscribe closes the file),
// standard input ('-'), any readable stream including a real pipe, and the
// failures of each (missing file, directory, stream error).
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { take } from 'rxjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CaptureFileError, type CaptureFileStats, readCaptureFile, readCaptureStream, STDIN_NAME } from '../../src/capture/file.js';
import { encodePcap } from '../../src/capture/write.js';
import type { Frame } from '../../src/types.js';
import { bytesOf, collect } from './capture-builders.js';

const dir = mkdtempSync(join(tmpdir(), 'kw-capture-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000;
const N = 2000;
const source = Array.from({ length: N }, (_, i) => ({ time: T0 + i, data: bytesOf(60 + (i % 13), i) }));
const fileBytes = encodePcap(source, { linkType: 1 });
const path = join(dir, 'sample.pcap');
writeFileSync(path, fileBytes);

function expectSample(frames: Frame[]): void {
  expect(frames).toHaveLength(N);
  frames.forEach((f, i) => {
    expect(f.time).toBe(source[i].time);
    expect(Buffer.from(f.data).equals(Buffer.from(source[i].data))).toBe(true);
  });
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('readCaptureFile', () => {
  it('reads a file, reporting progress against its size and the final stats', async () => {
    const stats: CaptureFileStats = { frames: 0, bytes: 0 };
    const progress: [number, number | undefined][] = [];
    const out = await collect(readCaptureFile(path, { stats, chunkBytes: 8192, onProgress: (d, t) => progress.push([d, t]) }));
    expect(out.completed).toBe(true);
    expectSample(out.frames);
    expect(stats).toEqual({ frames: N, bytes: fileBytes.length, format: 'pcap' });
    expect(progress.length).toBeGreaterThan(fileBytes.length / 8192 - 1);
    expect(progress.every(([, t]) => t === fileBytes.length)).toBe(true);
    expect(progress.map(([d]) => d)).toEqual([...progress.map(([d]) => d)].sort((a, b) => a - b));
    expect(progress.at(-1)?.[0]).toBe(fileBytes.length);
  });

  it('frames stay intact after reading goes on (buffers are never reused)', async () => {
    const kept: Frame[] = [];
    const out = await collect(readCaptureFile(path, { chunkBytes: 300 }));
    kept.push(...out.frames);
    expectSample(kept);
  });

  it('unsubscribing stops reading and closes the file', async () => {
    const before = openFds();
    const progress: number[] = [];
    const got: Frame[] = [];
    await new Promise<void>((resolve, reject) => {
      readCaptureFile(path, { chunkBytes: 4096, onProgress: (d) => progress.push(d) })
        .pipe(take(3))
        .subscribe({ next: (f) => got.push(f), error: reject, complete: resolve });
    });
    expect(got.map((f) => f.time)).toEqual([T0, T0 + 1, T0 + 2]);
    await vi.waitFor(() => expect(openFds()).toBe(before));
    await new Promise((r) => setTimeout(r, 50));
    expect(progress).toEqual([4096]);
  });

  it('unsubscribing before the file is even open leaves nothing open', async () => {
    const before = openFds();
    readCaptureFile(path).subscribe().unsubscribe();
    await new Promise((r) => setTimeout(r, 50));
    expect(openFds()).toBe(before);
  });

  it('a missing file errors with CaptureFileError naming the file, no byte offset', async () => {
    const missing = join(dir, 'nope.pcap');
    const out = await collect(readCaptureFile(missing));
    expect(out.error).toBeInstanceOf(CaptureFileError);
    expect(out.error?.message).toMatch(new RegExp(`^${missing}: cannot open: ENOENT`));
    expect((out.error as CaptureFileError).offset).toBe(-1);
  });

  it('a directory errors with the read failure', async () => {
    const out = await collect(readCaptureFile(dir));
    expect(out.error).toBeInstanceOf(CaptureFileError);
    expect(out.error?.message).toMatch(/read failed: EISDIR/);
  });

  it('a FIFO has no total size for progress', async () => {
    const fifo = join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
    const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', path, fifo], { stdio: 'ignore' });
    const exited = new Promise((r) => writer.on('exit', r));
    const totals = new Set<number | undefined>();
    const out = await collect(readCaptureFile(fifo, { onProgress: (_, t) => totals.add(t) }));
    await exited;
    expectSample(out.frames);
    expect(totals).toEqual(new Set([undefined]));
  });
});

describe('streams and standard input', () => {
  it("'-' reads standard input", async () => {
    const stdin = createReadStream(path, { highWaterMark: 1000 });
    const spy = vi.spyOn(process, 'stdin', 'get').mockReturnValue(stdin as unknown as typeof process.stdin);
    try {
      const stats: CaptureFileStats = { frames: 0, bytes: 0 };
      const out = await collect(readCaptureFile('-', { stats }));
      expect(out.completed).toBe(true);
      expectSample(out.frames);
      expect(stats.frames).toBe(N);
    } finally {
      spy.mockRestore();
    }
  });

  it('errors on stdin name the stream as <stdin>', async () => {
    const stdin = Readable.from([Buffer.from(fileBytes.subarray(0, 90))]);
    const spy = vi.spyOn(process, 'stdin', 'get').mockReturnValue(stdin as unknown as typeof process.stdin);
    try {
      const out = await collect(readCaptureFile('-'));
      expect(out.error).toBeInstanceOf(CaptureFileError);
      expect(out.error?.message).toMatch(new RegExp(`^${STDIN_NAME}: byte \\d+: truncated record`));
    } finally {
      spy.mockRestore();
    }
  });

  it('a real pipe from a child process (cat FILE)', async () => {
    const child = spawn('cat', [path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = await collect(readCaptureStream(child.stdout, 'cat'));
    expect(out.completed).toBe(true);
    expectSample(out.frames);
  });

  it('any split of the stream into chunks gives the same frames', async () => {
    for (const size of [7, 16, 17, 4096]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < fileBytes.length; i += size) chunks.push(Buffer.from(fileBytes.subarray(i, i + size)));
      const out = await collect(readCaptureStream(Readable.from(chunks), 'split', { chunkBytes: 1024 }));
      expectSample(out.frames);
    }
  });

  it('unsubscribing detaches from the stream and pauses it', async () => {
    const stream = new PassThrough();
    const got: Frame[] = [];
    const sub = readCaptureStream(stream, 's').subscribe((f) => got.push(f));
    stream.write(fileBytes.subarray(0, 24 + 16 + 60));
    await new Promise((r) => setImmediate(r));
    expect(got).toHaveLength(1);
    sub.unsubscribe();
    expect(stream.listenerCount('data')).toBe(0);
    expect(stream.isPaused()).toBe(true);
  });

  it('a stream error becomes a CaptureFileError with the bytes read so far', async () => {
    const stream = new PassThrough();
    const done = collect(readCaptureStream(stream, 'broken'));
    stream.write(fileBytes.subarray(0, 50));
    await new Promise((r) => setImmediate(r));
    stream.destroy(new Error('connection reset'));
    const out = await done;
    expect(out.error).toBeInstanceOf(CaptureFileError);
    expect(out.error?.message).toBe('broken: byte 50: read failed: connection reset');
  });

  it('a text stream is refused', async () => {
    const out = await collect(readCaptureStream(Readable.from(['not bytes']), 'text'));
    expect(out.error?.message).toMatch(/text, not bytes/);
  });

  it('the fixture matches when read from disk and from a stream', async () => {
    const name = new URL('../../fixtures/formats/dumpcap-two.pcapng', import.meta.url).pathname;
    const a = await collect(readCaptureFile(name));
    const b = await collect(readCaptureStream(Readable.from([readFileSync(name)]), 'x'));
    expect(b.frames.map((f) => f.offset)).toEqual(a.frames.map((f) => f.offset));
    expect(a.frames.length).toBeGreaterThan(0);
  });
});
