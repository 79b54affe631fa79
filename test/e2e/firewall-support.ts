// Helpers for the firewall end-to-end tests: an echo service in the server
// namespace and connection probes run from the client namespace. All traffic
// stays between the lab's own addresses.
import { LAB_V4, type Lab, type LabHost } from '../../src/lab/netns.js';
import type { Door } from '../../src/types.js';

/** The protected port, and a port no door mentions (must never be affected). */
export const DOOR_PORT = 2222;
export const OTHER_PORT = 2223;
/**
 * Give-up time of one probe: a dropped SYN shows as 'timeout'. 1 s: an
 * accepted connect inside the lab takes well under a millisecond, but the
 * probing node process can be descheduled for hundreds of ms at load 15.
 */
export const PROBE_TIMEOUT_MS = 1000;
/** Bound on a whole helper process (start-up included) so no test waits on it for its full timeout. */
const PROCESS_BOUND_MS = 30_000;

export const testDoor: Door = {
  kind: 'sequence',
  name: 'ssh',
  sequence: [{ port: 1111, protocol: 'tcp' }],
  windowMs: 5000,
  open: [{ port: DOOR_PORT, protocol: 'tcp' }],
  durationMs: 2000,
};

const ECHO_SERVER = `
const net = require('node:net');
let listening = 0;
for (const port of JSON.parse(process.argv[1])) {
  net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); })
    .listen({ port, host: '::' }, () => { if (++listening === 2) console.log('ready'); });
}`;

/** Start a dual-stack TCP echo server on DOOR_PORT and OTHER_PORT in the server namespace. */
export async function startEchoServer(lab: Lab): Promise<void> {
  const child = lab.spawn(lab.server, ['node', '-e', ECHO_SERVER, JSON.stringify([DOOR_PORT, OTHER_PORT])]);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    void child.then((r) => reject(new Error(`echo server exited: ${String(r.stderr)}`)));
  });
}

export interface Probe {
  readonly host: string;
  readonly port: number;
  /** Local (source) address in the client namespace. */
  readonly from: string;
}

export type ProbeResult = 'open' | 'timeout' | string;

const PROBE_SCRIPT = `
const net = require('node:net');
const [probes, timeoutMs] = JSON.parse(process.argv[1]);
const one = (p) => new Promise((res) => {
  const s = net.connect({ host: p.host, port: p.port, localAddress: p.from });
  const t = setTimeout(() => { s.destroy(); res('timeout'); }, timeoutMs);
  s.on('connect', () => { clearTimeout(t); s.destroy(); res('open'); });
  s.on('error', (e) => { clearTimeout(t); res(e.code || String(e)); });
});
Promise.all(probes.map(one)).then((r) => console.log(JSON.stringify(r)));`;

/** Try TCP connections (in parallel) from the client namespace, or another: 'open', 'timeout' (dropped) or an error code. */
export async function probe(lab: Lab, probes: readonly Probe[], host: LabHost = lab.client): Promise<ProbeResult[]> {
  const r = await lab.run(host, ['node', '-e', PROBE_SCRIPT, JSON.stringify([probes, PROBE_TIMEOUT_MS])], { timeout: PROCESS_BOUND_MS });
  if (r.exitCode !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ProbeResult[];
}

const HOLD_SCRIPT = `
const net = require('node:net');
const [p, waitUntil, timeoutMs] = JSON.parse(process.argv[1]);
const out = {};
const echo = (s, text) => new Promise((res) => {
  const t = setTimeout(() => res('no echo'), timeoutMs);
  s.once('data', (d) => { clearTimeout(t); res(d.toString()); });
  s.write(text);
});
const fresh = () => new Promise((res) => {
  const s = net.connect({ host: p.host, port: p.port, localAddress: p.from });
  const t = setTimeout(() => { s.destroy(); res('timeout'); }, timeoutMs);
  s.on('connect', () => { clearTimeout(t); s.destroy(); res('open'); });
  s.on('error', (e) => { clearTimeout(t); res(e.code); });
});
const held = net.connect({ host: p.host, port: p.port, localAddress: p.from });
const report = () => { console.log(JSON.stringify(out)); process.exit(0); };
// A dropped SYN must not leave this waiting for the kernel's ~2 min of retries.
const connectTimer = setTimeout(() => { out.error = 'connect timeout'; held.destroy(); report(); }, timeoutMs);
held.on('error', (e) => { out.error = e.code; report(); });
held.on('connect', async () => {
  clearTimeout(connectTimer);
  out.before = await echo(held, 'before');
  await new Promise((r) => setTimeout(r, Math.max(0, waitUntil - Date.now())));
  out.newAfter = await fresh();
  out.heldAfter = await echo(held, 'after');
  held.destroy();
  console.log(JSON.stringify(out));
});`;

/**
 * Connect and keep the connection; at `waitUntil` (wall clock, after the
 * access ended) try a new connection and send data through the kept one.
 */
export async function holdAcrossExpiry(
  lab: Lab,
  p: Probe,
  waitUntil: number,
): Promise<{ before?: string; newAfter?: string; heldAfter?: string; error?: string }> {
  const bound = Math.max(0, waitUntil - Date.now()) + PROCESS_BOUND_MS;
  const r = await lab.run(lab.client, ['node', '-e', HOLD_SCRIPT, JSON.stringify([p, waitUntil, PROBE_TIMEOUT_MS])], { timeout: bound });
  if (r.exitCode !== 0) throw new Error(`hold script failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { before?: string; newAfter?: string; heldAfter?: string; error?: string };
}

/** Run a command in the server namespace and return stdout; throws with stderr on failure. */
export async function inServer(lab: Lab, argv: readonly string[]): Promise<string> {
  const r = await lab.run(lab.server, argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/** Connections the server makes to itself (they arrive on lo): never blocked. */
export const LOCAL_PROBES: readonly Probe[] = [
  { host: '127.0.0.1', port: DOOR_PORT, from: '127.0.0.1' },
  { host: LAB_V4.server, port: DOOR_PORT, from: LAB_V4.server },
  { host: '::1', port: DOOR_PORT, from: '::1' },
];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
