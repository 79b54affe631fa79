// An ascending SYN sweep from the client namespace: one non-blocking connect
// per port, each socket closed right after connect() was issued (so exactly
// one SYN, as the knock client does), in batches to bound open descriptors.
// Issue order is port order, so the SYNs leave in ascending order. An
// optional pause between batches paces it (see daemon-sweep.test.ts).
import type { Lab } from '../../../src/lab/netns.js';

const SWEEP_SCRIPT = `
const net = require('node:net');
const { host, from, first, last, batch, pauseMs } = JSON.parse(process.argv[1]);
const start = performance.now();
const one = (port) => new Promise((res) => {
  const s = net.connect({ host, port, localAddress: from });
  s.on('error', () => {});
  s.once('connectionAttempt', () => process.nextTick(() => { s.destroy(); res(); }));
  s.once('close', res);
});
(async () => {
  for (let p = first; p <= last; p += batch) {
    const ports = [];
    for (let q = p; q < Math.min(p + batch, last + 1); q++) ports.push(q);
    await Promise.all(ports.map(one));
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  console.log(JSON.stringify({ ms: Math.round(performance.now() - start), ports: last - first + 1 }));
})();`;

export interface SweepResult {
  readonly ms: number;
  readonly ports: number;
}

export async function synSweep(lab: Lab, options: { host: string; from: string; first: number; last: number; batch?: number; pauseMs?: number }): Promise<SweepResult> {
  const r = await lab.run(lab.client, [process.execPath, '-e', SWEEP_SCRIPT, JSON.stringify({ batch: 256, pauseMs: 0, ...options })]);
  if (r.exitCode !== 0) throw new Error(`SYN sweep failed (${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout) as SweepResult;
}
