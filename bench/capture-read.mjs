#!/usr/bin/env node
// Capture-file read throughput: writes N synthetic 60-80 byte frames as pcap
// and pcapng (to /tmp unless BENCH_DIR is set), then times readCaptureFile
// over each, emitting into a counter. Needs a build (npm run build); KW_DIST
// points at another compiled tree.
//   node bench/capture-read.mjs [N=1000000] [runs=5]
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const dist = process.env.KNOCKWATCH_DIST ?? new URL('../dist/', import.meta.url).pathname;
const { readCaptureFile } = await import(pathToFileURL(join(dist, 'capture/file.js')).href);
const { writePcap, writePcapng } = await import(pathToFileURL(join(dist, 'capture/write.js')).href);

const n = Number(process.argv[2] ?? 1_000_000);
const runs = Number(process.argv[3] ?? 5);
const dir = process.env.BENCH_DIR ?? tmpdir();

function* frames() {
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(60 + (i % 21));
    data[0] = i & 0xff;
    yield { time: t0 + i * 0.01, data };
  }
}

function readOnce(path) {
  return new Promise((resolve, reject) => {
    let count = 0;
    let bytes = 0;
    const start = performance.now();
    readCaptureFile(path).subscribe({
      next(f) {
        count++;
        bytes += f.data.length;
      },
      error: reject,
      complete: () => resolve({ count, bytes, seconds: (performance.now() - start) / 1000 }),
    });
  });
}

for (const [name, write] of [
  ['pcap', (p) => writePcap(p, frames(), { linkType: 1 })],
  ['pcapng', (p) => writePcapng(p, frames(), { interfaces: [{ linkType: 1 }] })],
]) {
  const path = join(dir, `kw-bench-${process.pid}.${name}`);
  try {
    let start = performance.now();
    const w = await write(path);
    const writeS = (performance.now() - start) / 1000;
    console.log(`${name}: wrote ${w.frames} frames, ${(w.bytes / 1e6).toFixed(1)} MB in ${writeS.toFixed(3)} s (${(w.frames / writeS / 1e6).toFixed(2)} M frames/s)`);
    const times = [];
    for (let r = 0; r < runs; r++) {
      const res = await readOnce(path);
      if (res.count !== n) throw new Error(`read ${res.count} frames, expected ${n}`);
      times.push(res.seconds);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(
      `${name}: read ${n} frames: best ${times[0].toFixed(3)} s, median ${median.toFixed(3)} s ` +
        `(${(n / median / 1e6).toFixed(2)} M frames/s median, ${(n / times[0] / 1e6).toFixed(2)} M best)`,
    );
  } finally {
    rmSync(path, { force: true });
  }
}
