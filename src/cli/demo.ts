// `knockwatch demo`: the daemon at work in a throwaway two-namespace lab.
// The real `knockwatch run` (libpcap capture, nftables) guards a small TCP
// service in the server namespace; the client namespace knocks with our own
// client. Everything lives in namespaces this command creates and removes,
// also on Ctrl-C (the lab's signal and exit hooks), so the host's own network
// and firewall are never touched. Exit 0 only when all scenarios behaved.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startGreetingService } from '../lab/connect.js';
import { builtCliPath, startDaemonProcess, type DaemonProcess } from '../lab/daemon-process.js';
import { createLab, isRoot, LAB_V4, labUnavailableReason, type Lab } from '../lab/netns.js';
import { DEMO_DOOR, GREETING, scenarioRightSequence, scenarioTooSlow, scenarioWrongKnock, type DemoContext } from './demo-scenarios.js';
import { createTranscript, describeDaemonLine } from './demo-transcript.js';
import { helpOnly } from './args.js';

const USAGE = `usage: knockwatch demo

Builds a two-namespace lab (server ${LAB_V4.server}, client ${LAB_V4.client}), runs
\`knockwatch run --interface kw0 --firewall nftables\` in the server namespace
in front of a TCP service on port ${DEMO_DOOR.servicePort}, and shows three scenarios:
  1. the right knock sequence opens the port, and it closes after the duration;
  2. a wrong extra knock keeps it closed;
  3. knocks slower than the window keep it closed.
Needs root (namespaces, packet capture, nftables inside the lab); changes
nothing outside the lab and removes the lab at the end, also on Ctrl-C.
Exit status 0 when every scenario behaved as expected, 1 otherwise.
`;

function configText(): string {
  return [
    '# written by `knockwatch demo`',
    'interface: kw0',
    'firewall: nftables',
    'capture: pcap',
    'doors:',
    `  - name: ${DEMO_DOOR.name}`,
    `    sequence: [${DEMO_DOOR.sequence.join(', ')}]`,
    `    window: ${DEMO_DOOR.windowMs}ms`,
    `    open: [${DEMO_DOOR.servicePort}/tcp]`,
    `    duration: ${DEMO_DOOR.durationMs}ms`,
    '',
  ].join('\n');
}

/** Why the demo cannot run here, or undefined. */
async function unavailableReason(cliPath: string): Promise<string | undefined> {
  if (!isRoot()) {
    return (
      'knockwatch demo needs root: it creates network namespaces and a veth pair, captures packets with libpcap\n' +
      'and installs nftables rules inside those namespaces (the host\'s own network and firewall are not touched).\n' +
      'Run it as root, e.g. `sudo knockwatch demo`.'
    );
  }
  const lab = await labUnavailableReason();
  if (lab !== undefined) return `knockwatch demo ${lab}`;
  const nft = await execa('nft', ['--version'], { reject: false });
  if (nft.exitCode !== 0) return "knockwatch demo needs the 'nft' command (Debian package nftables)";
  if (!existsSync(cliPath)) return `knockwatch demo runs the built daemon, but ${cliPath} is missing: run \`npm run build\` first`;
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const early = helpOnly('demo', argv, USAGE);
  if (early !== undefined) return early;
  const cliPath = builtCliPath();
  const reason = await unavailableReason(cliPath);
  if (reason !== undefined) {
    process.stderr.write(`${reason}\n`);
    return 1;
  }

  const t = createTranscript();
  let lab: Lab | undefined;
  let daemon: DaemonProcess | undefined;
  let dir: string | undefined;
  // On Ctrl-C or SIGTERM the lab's own handler removes the namespaces and
  // exits; the temporary config goes with this 'exit' hook.
  const removeDir = (): void => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (): void => {
    if (!interrupted) t.note('\ninterrupted: removing the lab');
    interrupted = true;
    t.silence();
  };
  process.on('exit', removeDir);
  try {
    lab = await createLab('demo');
    // Registered after createLab installed its handlers (a listener added
    // earlier would disable Node's default exit on Ctrl-C), and with
    // on(), not once(): execa's signal-exit re-raises a signal when its own
    // listener is the only one left, which would kill us before the lab's
    // (once) handler has removed the namespaces.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    t.note('knockwatch demo: the real daemon in a two-namespace lab');
    t.note(`  server ${lab.server.v4} (namespace ${lab.server.ns}): knockwatch run + a TCP service on port ${DEMO_DOOR.servicePort}`);
    t.note(`  client ${lab.client.v4} (namespace ${lab.client.ns}): knocks with \`knockwatch knock\``);
    t.note(
      `  door "${DEMO_DOOR.name}": knock ${DEMO_DOOR.sequence.join(', ')} within ${DEMO_DOOR.windowMs / 1000} s -> ` +
        `${DEMO_DOOR.servicePort}/tcp opens for ${DEMO_DOOR.durationMs / 1000} s\n`,
    );
    t.say('lab', `namespaces ${lab.server.ns} and ${lab.client.ns} joined by veth kw0`);
    dir = mkdtempSync(join(tmpdir(), 'knockwatch-demo-'));
    const configPath = join(dir, 'knockwatch.yaml');
    writeFileSync(configPath, configText());
    await startGreetingService(lab, lab.server, DEMO_DOOR.servicePort, GREETING);
    t.say('server', `TCP service listening on port ${DEMO_DOOR.servicePort}`);
    t.say('server', `knockwatch run --config ${configPath} --interface kw0 --firewall nftables`);
    daemon = await startDaemonProcess(lab, {
      cliPath,
      configPath,
      firewall: 'nftables',
      capture: 'pcap',
      onLine: (line) => {
        const text = describeDaemonLine(line);
        if (text !== undefined) t.say('daemon', text);
      },
    });
    const ctx: DemoContext = { lab, daemon, t, cliPath };
    await scenarioRightSequence(ctx);
    await scenarioWrongKnock(ctx);
    await scenarioTooSlow(ctx);
  } catch (err) {
    if (!interrupted) t.check('demo', false, (err as Error).message);
  } finally {
    // When interrupted, the lab's own SIGINT handler is already removing the
    // namespaces (with everything running in them) and exits when done.
    if (!interrupted) {
      t.heading('Cleaning up');
      if (daemon) {
        const exit = await daemon.stop();
        if (exit.exitCode !== 0) t.check('daemon shuts down cleanly', false, `exit ${String(exit.exitCode ?? exit.signal)}`);
      }
      await lab?.destroy();
      if (lab) t.say('lab', 'namespaces removed');
    }
    removeDir();
    process.off('exit', removeDir);
    // When interrupted, the lab's handler exits (130) once the namespaces are
    // gone; until then a second Ctrl-C must not kill us half-way.
    if (!interrupted) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  if (interrupted) return 130;

  if (t.failures.length === 0) {
    t.note('\nAll three scenarios behaved as expected.');
    return 0;
  }
  t.note(`\n${t.failures.length} check(s) differed from what was expected:`);
  for (const f of t.failures) t.note(`  - ${f}`);
  return 1;
}
