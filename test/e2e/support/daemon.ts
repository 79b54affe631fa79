// Running the built daemon (dist/cli.js) in a lab for the end-to-end tests:
// config files, start-up, knocking with our own CLI client, and the log
// lines that say what the daemon decided.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { startDaemonProcess, type DaemonLogLine, type DaemonProcess } from '../../../src/lab/daemon-process.js';
import type { Lab } from '../../../src/lab/netns.js';
import type { CaptureKind, FirewallKind } from '../../../src/types.js';

export type { DaemonLogLine, DaemonProcess } from '../../../src/lab/daemon-process.js';

export const CLI_PATH = fileURLToPath(new URL('../../../dist/cli.js', import.meta.url));

/** The tests drive the built program; say how to get it rather than fail obscurely. */
export function requireBuiltCli(): string {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` before the end-to-end tests`);
  return CLI_PATH;
}

export interface TestDoor {
  readonly sequence: readonly number[];
  readonly windowMs: number;
  readonly durationMs: number;
  readonly open: readonly number[];
}

/** A one-door config (door `ssh`, TCP knocks, TCP ports opened). */
export async function writeDoorConfig(path: string, door: TestDoor, firewall: FirewallKind, capture: CaptureKind): Promise<void> {
  const text = [
    'interface: kw0',
    `firewall: ${firewall}`,
    `capture: ${capture}`,
    'doors:',
    '  - name: ssh',
    `    sequence: [${door.sequence.join(', ')}]`,
    `    window: ${door.windowMs}ms`,
    `    open: [${door.open.map((p) => `${p}/tcp`).join(', ')}]`,
    `    duration: ${door.durationMs}ms`,
    '',
  ].join('\n');
  await writeFile(path, text);
}

export interface Backend {
  readonly firewall: FirewallKind;
  readonly capture: CaptureKind;
}

/**
 * Bound on the daemon's start-up (capture open). 15 s was too short under
 * stress-ng --cpu 2 beside 4 test workers at load 12 (iptables set-up alone
 * took 4 s there); a wait that passes early costs nothing.
 */
const READY_WITHIN_MS = 40_000;

/**
 * Start `knockwatch run` in the server namespace and wait until its capture is
 * open. At debug level: a reset after the first step (what every scanner
 * causes) is logged only there, and the tests wait for those too.
 */
export function launchDaemon(lab: Lab, configPath: string, backend: Backend, extraArgs: readonly string[] = []): Promise<DaemonProcess> {
  return startDaemonProcess(lab, { cliPath: requireBuiltCli(), configPath, firewall: backend.firewall, capture: backend.capture, logLevel: 'debug', extraArgs }, READY_WITHIN_MS);
}

/** `knockwatch remove-rules` in the server namespace (a clean stop leaves our rules in place). */
export async function removeRules(lab: Lab, firewall: FirewallKind, extraArgs: readonly string[] = []): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return lab.run(lab.server, [process.execPath, requireBuiltCli(), 'remove-rules', '--firewall', firewall, ...extraArgs]);
}

export interface KnockSpec {
  readonly host: string;
  readonly ports: readonly number[];
  /** Source address in the client namespace. */
  readonly from: string;
  readonly delayMs?: number;
}

/** `knockwatch knock` from the client namespace; throws if the client fails. */
export async function knockFrom(lab: Lab, spec: KnockSpec): Promise<void> {
  const argv = [process.execPath, requireBuiltCli(), 'knock', spec.host, ...spec.ports.map(String), '--source', spec.from];
  if (spec.delayMs) argv.push('--delay', String(spec.delayMs));
  const r = await lab.run(lab.client, argv);
  if (r.exitCode !== 0) throw new Error(`knock ${spec.ports.join(' ')} from ${spec.from} failed (${r.exitCode}): ${r.stderr}`);
}

export const lineFor =
  (msg: string, source: string) =>
  (line: DaemonLogLine): boolean =>
    line.msg === msg && line.source === source;

/** Milliseconds since the epoch of an 'access opened' line's `until`. */
export function untilOf(line: DaemonLogLine): number {
  const ms = Date.parse(String(line.until));
  if (!Number.isFinite(ms)) throw new Error(`log line has no valid 'until': ${JSON.stringify(line)}`);
  return ms;
}
