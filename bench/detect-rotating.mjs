#!/usr/bin/env node
// Detection throughput under a random-source, random-port TCP flood (1 M
// events, no real knock): a sequence door against a rotating door over
// 20000-60000, where 61 % of the flood lands in the range (every port of it may
// be a first step of some period, so capture and the start mask let it in).
// Build first (`npm run build`), then: node bench/detect-rotating.mjs
import { createDetector } from '../dist/detect/index.js';
import { secretBytes } from '../dist/config/door-files.js';
const common = { open: [{ port: 22, protocol: 'tcp' }], durationMs: 30_000 };
const seqDoor = { kind: 'sequence', name: 'ssh', sequence: [1234, 5678, 9012].map((port) => ({ port, protocol: 'tcp' })), windowMs: 10_000, ...common };
const rotDoor = { kind: 'rotating', name: 'rot', keyFile: '/k', key: secretBytes(Buffer.alloc(32, 7)), steps: 4, periodMs: 30_000, portRange: { low: 20000, high: 60000 }, protocol: 'tcp', windowMs: 5000, ...common };
let seed = 0x9e3779b9;
const rand = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return seed >>> 0; };
const N = 1_000_000;
const events = Array.from({ length: N }, (_, i) => {
  const r = rand();
  return { time: 1.8e12 + i * 0.01, family: 4, source: `10.${(r >>> 16) & 255}.${(r >>> 8) & 255}.${r & 255}`, destination: '10.0.0.1', protocol: 'tcp', sourcePort: 40000, port: 1 + (rand() % 65535), tcpFlags: 2, payload: new Uint8Array(0) };
});
for (const [name, door] of [['sequence', seqDoor], ['rotating', rotDoor], ['sequence', seqDoor], ['rotating', rotDoor]]) {
  const d = createDetector([door]);
  const emit = () => {};
  const t = performance.now();
  for (const ev of events) d.onKnock(ev, emit);
  const s = (performance.now() - t) / 1000;
  console.log(`${name.padEnd(9)} ${(N / s / 1e6).toFixed(2)} M events/s, sources left ${d.stats.sources}`);
}
