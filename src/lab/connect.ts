// TCP from inside a lab namespace: a small greeting service, and connection
// attempts that tell an accepted connection from a dropped SYN (timeout) or a
// refusal. Each runs as its own node process under `ip netns exec`, because a
// socket belongs to the namespace of the process that creates it.
import type { Lab, LabHost } from './netns.js';

export type ConnectOutcome = 'open' | 'timeout' | 'refused' | 'unreachable' | 'error';

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Local (source) address; must be configured in the namespace. */
  readonly from?: string;
  /** Give-up time of one attempt, ms. A dropped SYN shows as a timeout. */
  readonly timeoutMs: number;
  /**
   * Keep making new attempts until this many ms have passed (for a check
   * right after knocking, when the firewall opens some ms later and a
   * retransmitted SYN would only come after a second).
   */
  readonly retryForMs?: number;
  /** After connecting, read one line (the greeting service's) within timeoutMs. */
  readonly readLine?: boolean;
}

export interface ConnectResult {
  readonly outcome: ConnectOutcome;
  /** Error code for 'error'/'refused'/'unreachable'. */
  readonly code?: string;
  /** The line read, with readLine. */
  readonly line?: string;
  /** From the first attempt to the outcome, ms. */
  readonly ms: number;
  readonly attempts: number;
}

const CONNECT_SCRIPT = `
const net = require('node:net');
const o = JSON.parse(process.argv[1]);
const start = performance.now();
const once = () => new Promise((res) => {
  const s = net.connect({ host: o.host, port: o.port, localAddress: o.from });
  let line = '';
  const done = (r) => { clearTimeout(t); s.destroy(); res(r); };
  const t = setTimeout(() => done(s.connecting ? { outcome: 'timeout' } : { outcome: 'open', line: line || undefined }), o.timeoutMs);
  s.on('connect', () => { if (!o.readLine) done({ outcome: 'open' }); });
  s.on('data', (d) => { line += d.toString(); const i = line.indexOf('\\n'); if (i >= 0) done({ outcome: 'open', line: line.slice(0, i) }); });
  s.on('error', (e) => done({ outcome: e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH' ? 'unreachable' : 'error', code: e.code || String(e) }));
});
(async () => {
  let attempts = 0, r;
  for (;;) {
    attempts++;
    r = await once();
    if (r.outcome === 'open' || r.outcome === 'error' || !o.retryForMs || performance.now() - start >= o.retryForMs) break;
    if (r.outcome !== 'timeout') await new Promise((w) => setTimeout(w, 20));
  }
  console.log(JSON.stringify({ ...r, ms: Math.round(performance.now() - start), attempts }));
})();`;

/** One connection check from `host`'s namespace (usually the lab's client). */
export async function connectFrom(lab: Lab, host: LabHost, options: ConnectOptions): Promise<ConnectResult> {
  // Bound the whole process too (node start-up included): a check never hangs a test.
  const bound = (options.retryForMs ?? 0) + options.timeoutMs + 30_000;
  const r = await lab.run(host, [process.execPath, '-e', CONNECT_SCRIPT, JSON.stringify(options)], { timeout: bound });
  if (r.exitCode !== 0) throw new Error(`connection check from ${host.ns} failed to run (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as ConnectResult;
}

const GREETING_SCRIPT = `
const net = require('node:net');
const [port, greeting] = JSON.parse(process.argv[1]);
net.createServer((s) => {
  s.on('error', () => {});
  s.write(greeting + '\\n');
  s.on('data', (d) => s.write(d));
}).listen({ port, host: '::' }, () => console.log('ready'));`;

/**
 * A dual-stack TCP service in `host`'s namespace that writes `greeting` and a
 * newline to every connection, then echoes. Resolves once it listens; it runs
 * until lab.destroy().
 */
export async function startGreetingService(lab: Lab, host: LabHost, port: number, greeting: string): Promise<void> {
  const child = lab.spawn(host, [process.execPath, '-e', GREETING_SCRIPT, JSON.stringify([port, greeting])], { buffer: false, stdin: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    void child.then(() => reject(new Error(`greeting service on port ${port} exited: ${err.trim()}`)));
  });
}
