// The demo's three scenarios, run against a real daemon in a lab: the right
// sequence opens the service port for the knocking source and the access
// ends after its duration; a wrong extra knock and knocks slower than the
// window leave it closed. Each records its checks in the transcript.
import { setTimeout as sleep } from 'node:timers/promises';
import { connectFrom, type ConnectResult } from '../lab/connect.js';
import type { DaemonLogLine, DaemonProcess } from '../lab/daemon-process.js';
import type { Lab } from '../lab/netns.js';
import type { Transcript } from './demo-transcript.js';

export const DEMO_DOOR = {
  name: 'ssh',
  sequence: [1234, 5678, 9012],
  servicePort: 2222,
  windowMs: 3000,
  durationMs: 6000,
} as const;
/** The extra knock of scenario 2. */
export const WRONG_PORT = 4444;
/** Scenario 3's pause between knocks: two pauses exceed the window. */
export const SLOW_DELAY_MS = 2000;
export const GREETING = 'hello from the service behind knockwatch';
/** A dropped SYN shows as no answer within this time. */
const PROBE_TIMEOUT_MS = 1000;
/** How long a just-opened port may take to accept, and to appear in the nft set. */
const OPEN_WITHIN_MS = 2000;

export interface DemoContext {
  readonly lab: Lab;
  readonly daemon: DaemonProcess;
  readonly t: Transcript;
  readonly cliPath: string;
}

function describeConnect(r: ConnectResult): string {
  switch (r.outcome) {
    case 'open':
      return r.line === undefined ? `connected after ${r.ms} ms, but no greeting` : `connected after ${r.ms} ms, read "${r.line}"`;
    case 'timeout':
      return `no answer within ${PROBE_TIMEOUT_MS} ms (the SYN was dropped)`;
    default:
      return `${r.outcome}${r.code ? ` (${r.code})` : ''}`;
  }
}

async function connectClosed(ctx: DemoContext, why: string): Promise<boolean> {
  const { lab, t } = ctx;
  t.say('client', `connect ${lab.server.v4}:${DEMO_DOOR.servicePort} from ${lab.client.v4} (${why})`);
  const r = await connectFrom(lab, lab.client, { host: lab.server.v4, port: DEMO_DOOR.servicePort, from: lab.client.v4, timeoutMs: PROBE_TIMEOUT_MS });
  return t.check('port stays closed', r.outcome === 'timeout', describeConnect(r));
}

async function connectOpen(ctx: DemoContext): Promise<boolean> {
  const { lab, t } = ctx;
  t.say('client', `connect ${lab.server.v4}:${DEMO_DOOR.servicePort} from ${lab.client.v4} and read the greeting`);
  const r = await connectFrom(lab, lab.client, {
    host: lab.server.v4,
    port: DEMO_DOOR.servicePort,
    from: lab.client.v4,
    timeoutMs: 300,
    retryForMs: OPEN_WITHIN_MS,
    readLine: true,
  });
  return t.check('port is open', r.outcome === 'open' && r.line === GREETING, describeConnect(r));
}

/** Knock from the client namespace with our own client, showing each packet as it leaves. */
async function knock(ctx: DemoContext, ports: readonly number[], delayMs = 0): Promise<boolean> {
  const { lab, t, cliPath } = ctx;
  const argv = [process.execPath, cliPath, 'knock', lab.server.v4, ...ports.map(String), '--verbose', ...(delayMs > 0 ? ['--delay', String(delayMs)] : [])];
  t.say('client', `knockwatch knock ${argv.slice(3).join(' ')}`);
  const child = lab.spawn(lab.client, argv, { buffer: false, stdin: 'ignore' });
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim() !== '') t.say('client', `  ${p.trim()}`);
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const r = await child;
  return r.exitCode === 0 || t.check('knock client', false, `exited ${String(r.exitCode)}: ${stderr.trim()}`);
}

/**
 * Our v4 set's elements once `done` holds for them, or as they are after
 * `withinMs`. A decision is logged just before its firewall command runs, so
 * the kernel catches up some ms after the log line.
 */
async function nftSetWhen(ctx: DemoContext, done: (elements: string) => boolean, withinMs: number): Promise<string> {
  const deadline = performance.now() + withinMs;
  let set = await nftSet(ctx);
  while (!done(set) && performance.now() < deadline) {
    await sleep(10);
    set = await nftSet(ctx);
  }
  return set;
}

/** The `elements = { ... }` part of our v4 set, or '(empty)'. */
async function nftSet(ctx: DemoContext): Promise<string> {
  const r = await ctx.lab.run(ctx.lab.server, ['nft', 'list', 'set', 'inet', 'knockwatch', `v4_${DEMO_DOOR.name}`]);
  if (r.exitCode !== 0) return `(nft list set failed: ${r.stderr.trim()})`;
  const m = /elements = \{([^}]*)\}/.exec(r.stdout);
  return m ? `{ ${m[1].replace(/\s+/g, ' ').trim()} }` : '(empty)';
}

const isFor =
  (msg: string, source: string) =>
  (l: DaemonLogLine): boolean =>
    l.msg === msg && l.source === source;

function noOpenSince(ctx: DemoContext, mark: number): boolean {
  const opened = ctx.daemon.find(isFor('access opened', ctx.lab.client.v4), mark);
  return ctx.t.check('daemon opened nothing', opened.length === 0, opened.length === 0 ? 'no "access opened" line' : `${opened.length} "access opened" line(s)`);
}

export async function scenarioRightSequence(ctx: DemoContext): Promise<void> {
  const { lab, daemon, t } = ctx;
  const source = lab.client.v4;
  t.heading(`Scenario 1: the right sequence ${DEMO_DOOR.sequence.join(', ')} opens ${DEMO_DOOR.servicePort}/tcp, for ${DEMO_DOOR.durationMs / 1000} s`);
  await connectClosed(ctx, 'before knocking');
  const mark = daemon.lines.length;
  if (!(await knock(ctx, DEMO_DOOR.sequence))) return;
  let opened: DaemonLogLine;
  try {
    opened = await daemon.waitFor(isFor('access opened', source), '"access opened" line', 3000, mark);
  } catch (err) {
    t.check('daemon opens the door', false, (err as Error).message.split('\n')[0]);
    return;
  }
  const element = `${source} . tcp . ${DEMO_DOOR.servicePort}`;
  const set = await nftSetWhen(ctx, (e) => e.includes(element), OPEN_WITHIN_MS);
  t.say('server', `nft list set inet knockwatch v4_${DEMO_DOOR.name}: elements = ${set}`);
  t.check('source is in the nftables set', set.includes(element), set);
  await connectOpen(ctx);

  const until = Date.parse(String(opened.until));
  const waitMs = Math.max(0, until - Date.now()) + 3000;
  t.say('demo', `waiting for the access to end (about ${((until - Date.now()) / 1000).toFixed(1)} s)`);
  try {
    await daemon.waitFor(isFor('access closed', source), '"access closed" line', waitMs, mark);
  } catch (err) {
    t.check('daemon closes the door after its duration', false, (err as Error).message.split('\n')[0]);
  }
  const after = await nftSetWhen(ctx, (e) => !e.includes(source), OPEN_WITHIN_MS);
  t.say('server', `nft list set inet knockwatch v4_${DEMO_DOOR.name}: elements = ${after}`);
  t.check('the nftables set is empty again', !after.includes(source), after);
  await connectClosed(ctx, 'after the access ended');
}

export async function scenarioWrongKnock(ctx: DemoContext): Promise<void> {
  const { lab, daemon, t } = ctx;
  const ports = [DEMO_DOOR.sequence[0], DEMO_DOOR.sequence[1], WRONG_PORT, DEMO_DOOR.sequence[2]];
  t.heading(`Scenario 2: a wrong extra knock (${ports.join(', ')}) keeps it closed`);
  const mark = daemon.lines.length;
  if (!(await knock(ctx, ports))) return;
  try {
    const reset = await daemon.waitFor(isFor('sequence reset', lab.client.v4), '"sequence reset" line', 3000, mark);
    t.check('daemon resets the sequence at the wrong port', reset.reason === 'wrong-port' && reset.port === WRONG_PORT, `reason ${String(reset.reason)}, port ${String(reset.port)}`);
  } catch (err) {
    t.check('daemon resets the sequence at the wrong port', false, (err as Error).message.split('\n')[0]);
  }
  await connectClosed(ctx, 'after the wrong sequence');
  noOpenSince(ctx, mark);
}

export async function scenarioTooSlow(ctx: DemoContext): Promise<void> {
  const { lab, daemon, t } = ctx;
  t.heading(
    `Scenario 3: the right ports, ${SLOW_DELAY_MS / 1000} s apart: ${((SLOW_DELAY_MS * (DEMO_DOOR.sequence.length - 1)) / 1000).toFixed(0)} s in all, more than the ${DEMO_DOOR.windowMs / 1000} s window`,
  );
  const mark = daemon.lines.length;
  if (!(await knock(ctx, DEMO_DOOR.sequence, SLOW_DELAY_MS))) return;
  try {
    const reset = await daemon.waitFor(isFor('sequence reset', lab.client.v4), '"sequence reset" line', 3000, mark);
    t.check('daemon resets the sequence when the window ends', reset.reason === 'window', `reason ${String(reset.reason)}`);
  } catch (err) {
    t.check('daemon resets the sequence when the window ends', false, (err as Error).message.split('\n')[0]);
  }
  await connectClosed(ctx, 'after the slow sequence');
  noOpenSince(ctx, mark);
}
