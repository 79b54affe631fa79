// The daemon end to end, shared by test/e2e/daemon-<firewall>-<capture>.test.ts:
// the built `knockwatch run` in the server namespace of a lab (real libpcap or
// eBPF capture, real nftables or iptables+ipset), real knocks and connections
// from the client namespace. One scenario table runs against every backend
// combination (firewall x capture), one combination per test file so the four
// run side by side (they wait out real expiries: 156 s one after the other,
// about 40 s each); each gets its own lab, destroyed in afterAll. Every source
// address knocks once, so no scenario has to wait for another's access to end.
// The 10,000-port SYN sweep is in daemon-sweep.test.ts, which runs alone
// (vitest.config.ts): its SYNs beside these timed checks made them miss the
// access at load 15.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebpfUnavailableReason } from '../../../src/capture/ebpf.js';
import { connectFrom } from '../../../src/lab/connect.js';
import { isCaptureReady } from '../../../src/lab/daemon-process.js';
import { createLab, type Lab } from '../../../src/lab/netns.js';
import type { FirewallKind } from '../../../src/types.js';
import { describeLab, labSkipReason } from '../../support/lab.js';
import { DOOR_PORT, OTHER_PORT, holdAcrossExpiry, probe, sleep, startEchoServer } from '../firewall-support.js';
import { knockFrom, launchDaemon, lineFor, removeRules, untilOf, writeDoorConfig, type Backend, type DaemonLogLine, type DaemonProcess, type TestDoor } from './daemon.js';
import { countOurObjects, snapshotRules, type RuleSnapshot } from './ruleset.js';
import { addSourcePool, type SourcePool } from './sources.js';

export const SEQUENCE = [1234, 5678, 9012];
/** The sequence after the SIGHUP reload. */
const NEW_SEQUENCE = [3141, 5926, 5358];
/**
 * 20 s accesses: the checks of an open door (log line, connect, kernel read,
 * probes) took over 3 s at load 15 on 2 cores one file at a time, and 11 s
 * with the four backend files side by side at load 11, so a 10 s access
 * expired under them. The expiry tests wait out the whole duration, so
 * longer costs time (about 10 s per file, the files run side by side).
 */
export const DOOR: TestDoor = { sequence: SEQUENCE, windowMs: 2000, durationMs: 20_000, open: [DOOR_PORT] };
/** Knocks this far apart make three knocks take longer than the window. */
const SLOW_DELAY_MS = 1200;
/** Bound on a daemon log line we wait for (a wait that passes early costs nothing). */
export const LOG_WITHIN_MS = 15_000;
/** One connect attempt's give-up time, while retrying until the door accepts. */
const ATTEMPT_MS = 500;
/** Time for a wrong decision to reach the kernel before a "stays closed" probe. */
export const SETTLE_MS = 500;
/** Scenarios started at once: each is a few node processes, slow to start on a busy machine. */
const SIDE_BY_SIDE = 4;
/**
 * After an access's deadline, by when the kernel must have ended it: nftables
 * timeouts are exact to the ms; ipset counts whole seconds and the adapter
 * rounds up, so up to a second later.
 */
const EXPIRY_GRACE_MS: Record<FirewallKind, number> = { nftables: 400, iptables: 1400, none: 0 };

interface KnockCase {
  readonly name: string;
  readonly family: 4 | 6;
  readonly ports: readonly number[];
  readonly delayMs?: number;
  readonly expect: 'open' | 'closed';
  /** Knock from the lab's own client address (10.199.0.2 / fd00:6b77::2) instead of a fresh pool address. */
  readonly fromClient?: boolean;
  /** For 'closed': the reset the daemon must log for the source. */
  readonly reset?: 'wrong-port' | 'window';
}

/** The shared scenario table: every backend combination runs all of it. */
const KNOCK_CASES: readonly KnockCase[] = [
  { name: 'correct IPv4 sequence opens exactly the door port for exactly that source', family: 4, ports: SEQUENCE, expect: 'open', fromClient: true },
  { name: 'correct IPv6 sequence opens exactly the door port for exactly that source', family: 6, ports: SEQUENCE, expect: 'open', fromClient: true },
  { name: 'wrong order stays closed', family: 4, ports: [5678, 1234, 9012], expect: 'closed', reset: 'wrong-port' },
  { name: 'wrong middle port stays closed', family: 4, ports: [1234, 4444, 9012], expect: 'closed', reset: 'wrong-port' },
  { name: 'a wrong extra knock stays closed', family: 4, ports: [1234, 5678, 4444, 9012], expect: 'closed', reset: 'wrong-port' },
  { name: 'IPv6 wrong extra knock stays closed', family: 6, ports: [1234, 5678, 4444, 9012], expect: 'closed', reset: 'wrong-port' },
  // The door's own port does not reset its sequence, but must not hide what follows (eBPF: the source stays active).
  { name: 'a knock on the door port mid-sequence does not hide a later wrong port', family: 4, ports: [1234, DOOR_PORT, 4444, 5678, 9012], expect: 'closed', reset: 'wrong-port' },
  { name: 'knocks slower than the window stay closed', family: 4, ports: SEQUENCE, delayMs: SLOW_DELAY_MS, expect: 'closed', reset: 'window' },
];

/** Why --capture ebpf cannot run here (printed, and its files skip), or undefined. */
export const ebpfSkipReason: string | undefined = labSkipReason === undefined ? await ebpfUnavailableReason() : undefined;

/** What the daemon owns in a namespace with one door, per backend (iptables: both families). */
const OUR_OBJECTS: Record<FirewallKind, Record<string, number>> = {
  nftables: { tables: 1, chains: 1, drops: 1 },
  iptables: { jumps: 2, chains: 2, drops: 2, sets: 2 },
  none: {},
};
const NONE_LEFT: Record<FirewallKind, Record<string, number>> = {
  nftables: { tables: 0, chains: 0, drops: 0 },
  iptables: { jumps: 0, chains: 0, drops: 0, sets: 0 },
  none: {},
};

const sleepUntil = (wallMs: number): Promise<void> => sleep(Math.max(0, wallMs - Date.now()));

/**
 * A promise started now and awaited by a test later: marked handled, so a
 * rejection is reported by that test rather than as an unhandled rejection.
 */
function settled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Run `tasks` at most `limit` at a time; the promises settle in any order. */
function limited<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T>[] {
  let running = 0;
  const queue: (() => void)[] = [];
  return tasks.map(async (task) => {
    if (running >= limit) await new Promise<void>((go) => queue.push(go));
    running++;
    try {
      return await task();
    } finally {
      running--;
      queue.shift()?.();
    }
  });
}

/** The whole scenario table against one backend combination (one call per test file). */
export function describeDaemonScenarios(backend: Backend): void {
  const { firewall, capture } = backend;
  const grace = EXPIRY_GRACE_MS[firewall];
  const noEbpf = capture === 'ebpf' && ebpfSkipReason !== undefined;
  if (noEbpf) console.warn(`[skipped] daemon end-to-end with --capture ebpf: ${ebpfSkipReason}`);

  (noEbpf ? describe.skip : describeLab)(`knockwatch run: ${firewall} firewall, ${capture} capture (namespace lab, built CLI)`, () => {
    let lab: Lab;
    let dir: string;
    let configPath: string;
    let daemon: DaemonProcess;
    let sources: SourcePool;
    let baseline: RuleSnapshot;
    const server = (family: 4 | 6): string => (family === 4 ? lab.server.v4 : lab.server.v6);
    /** A client address that never knocks: must stay blocked. */
    const bystander = (family: 4 | 6): string => (family === 4 ? lab.clientExtraV4 : lab.clientExtraV6);

    /** Knock the right sequence from `from` and wait until the port accepts; returns the access deadline. */
    async function knockOpen(from: string, family: 4 | 6, sequence: readonly number[] = SEQUENCE, since = 0): Promise<number> {
      await knockFrom(lab, { host: server(family), ports: sequence, from });
      const opened = await daemon.waitFor(lineFor('access opened', from), `"access opened" for ${from}`, LOG_WITHIN_MS, since);
      const until = untilOf(opened);
      const c = await connectUntilOpen(from, server(family), until);
      if (c !== 'open') throw new Error(`connect from ${from} after its knock: ${c}, expected open (access until ${new Date(until).toISOString()})`);
      return until;
    }

    /**
     * Connect to the door port with short attempts until one is accepted or
     * the access is near its end (the firewall opens some ms after the log
     * line, and a retransmitted SYN would only come a second later).
     */
    async function connectUntilOpen(from: string, host: string, until: number): Promise<string> {
      const retryForMs = Math.max(2 * ATTEMPT_MS, until - Date.now() - 1000);
      return (await connectFrom(lab, lab.client, { host, port: DOOR_PORT, from, timeoutMs: ATTEMPT_MS, retryForMs })).outcome;
    }

    /** Fails clearly when a check of an open access ran after its end (the result would not say anything). */
    function assertBefore(until: number, what: string): void {
      if (Date.now() >= until) throw new Error(`${what} finished ${Date.now() - until} ms after the access ended: the machine is too slow for this check`);
    }

    interface KnockObservation {
      readonly from: string;
      readonly opened?: DaemonLogLine;
      readonly reset?: DaemonLogLine;
      /** From the knocking source to the door port. */
      readonly connect: string;
      readonly probes: readonly string[];
      /** The kernel's access elements for the source, and for the bystander. */
      readonly elements: readonly string[];
      readonly bystanderElements: readonly string[];
      /** "access opened" lines for the source by the end. */
      readonly opens: number;
    }

    const elementsOf = (snapshot: RuleSnapshot, source: string): string[] => snapshot.elements.filter((e) => e.startsWith(`${source} `));

    async function observeKnock(c: KnockCase): Promise<KnockObservation> {
      const from = c.fromClient ? (c.family === 4 ? lab.client.v4 : lab.client.v6) : sources.next(c.family);
      const host = server(c.family);
      const other = bystander(c.family);
      await knockFrom(lab, { host, ports: c.ports, from, ...(c.delayMs !== undefined ? { delayMs: c.delayMs } : {}) });
      if (c.expect === 'open') {
        const opened = await daemon.waitFor(lineFor('access opened', from), `"access opened" for ${from}`, LOG_WITHIN_MS);
        const until = untilOf(opened);
        const first = await connectUntilOpen(from, host, until);
        const [kernel, probes] = await Promise.all([
          snapshotRules(lab, firewall),
          probe(lab, [
            { host, port: DOOR_PORT, from: other },
            { host, port: OTHER_PORT, from },
            { host, port: OTHER_PORT, from: other },
          ]),
        ]);
        assertBefore(until, `the kernel read and probes for ${from}`);
        const opens = daemon.find(lineFor('access opened', from)).length;
        return { from, opened, connect: first, probes, elements: elementsOf(kernel, from), bystanderElements: elementsOf(kernel, other), opens };
      }
      const reset = await daemon.waitFor(lineFor('sequence reset', from), `"sequence reset" for ${from}`, LOG_WITHIN_MS);
      await sleep(SETTLE_MS);
      const [door, otherPort] = await probe(lab, [
        { host, port: DOOR_PORT, from },
        { host, port: OTHER_PORT, from },
      ]);
      const kernel = await snapshotRules(lab, firewall);
      const opens = daemon.find(lineFor('access opened', from)).length;
      return { from, reset, connect: door, probes: [otherPort], elements: elementsOf(kernel, from), bystanderElements: elementsOf(kernel, other), opens };
    }

    interface EstablishedObservation {
      readonly held: Awaited<ReturnType<typeof holdAcrossExpiry>>;
      readonly closeReason: unknown;
    }

    async function observeEstablished(): Promise<EstablishedObservation> {
      const from = sources.next(4);
      const until = await knockOpen(from, 4);
      const held = await holdAcrossExpiry(lab, { host: lab.server.v4, port: DOOR_PORT, from }, until + grace);
      const closed = await daemon.waitFor(lineFor('access closed', from), `"access closed" for ${from}`, LOG_WITHIN_MS);
      return { held, closeReason: closed.reason };
    }

    beforeAll(async () => {
      lab = await createLab(`d${firewall.slice(0, 3)}${capture}`);
      dir = await mkdtemp(join(tmpdir(), 'knockwatch-e2e-'));
      configPath = join(dir, 'knockwatch.yaml');
      sources = await addSourcePool(lab, 24);
      await startEchoServer(lab);
      await writeDoorConfig(configPath, DOOR, firewall, capture);
      daemon = await launchDaemon(lab, configPath, backend);
      baseline = await snapshotRules(lab, firewall);
    });
    afterAll(async () => {
      await daemon?.stop();
      await lab?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('before any knock the door port drops new connections, other ports are untouched, our objects exist once', async () => {
      expect(
        await probe(lab, [
          { host: lab.server.v4, port: DOOR_PORT, from: lab.client.v4 },
          { host: lab.server.v6, port: DOOR_PORT, from: lab.client.v6 },
          { host: lab.server.v4, port: OTHER_PORT, from: lab.client.v4 },
        ]),
      ).toEqual(['timeout', 'timeout', 'open']);
      expect(countOurObjects(baseline, firewall)).toEqual(OUR_OBJECTS[firewall]);
      expect(baseline.elements).toEqual([]);
    });

    describe('scenarios run side by side (one fresh source each)', () => {
      // Started in beforeAll (a few at a time) and asserted one per test, so
      // the table costs about the time of its slowest rows, not the sum. Only
      // cheap scenarios: the SYN sweep runs alone (daemon-sweep.test.ts), as
      // its 10,000 SYNs beside these timed checks made them miss the access
      // (load 15).
      const knocks = new Map<string, Promise<KnockObservation>>();
      let established: Promise<EstablishedObservation>;
      beforeAll(() => {
        const [held, ...rows] = limited<unknown>([() => observeEstablished(), ...KNOCK_CASES.map((c) => () => observeKnock(c))], SIDE_BY_SIDE);
        established = settled(held as Promise<EstablishedObservation>);
        KNOCK_CASES.forEach((c, i) => knocks.set(c.name, settled(rows[i] as Promise<KnockObservation>)));
      });

      for (const c of KNOCK_CASES) {
        it(c.name, async () => {
          const o = await knocks.get(c.name)!;
          if (c.expect === 'open') {
            expect(o.opened?.ports, `"access opened" for ${o.from}`).toEqual([`${DOOR_PORT}/tcp`]);
            expect(o.connect).toBe('open');
            // Bystander -> door port, source -> other port, bystander -> other port.
            expect(o.probes).toEqual(['timeout', 'open', 'open']);
            expect(o.elements).toEqual([`${o.from} tcp/${DOOR_PORT}`]);
          } else {
            expect(o.reset?.reason, `"sequence reset" for ${o.from}`).toBe(c.reset);
            expect(o.connect).toBe('timeout');
            expect(o.probes).toEqual(['open']);
            expect(o.elements).toEqual([]);
          }
          // Whatever it expects, no access for a source that never knocked.
          expect(o.bystanderElements).toEqual([]);
          expect(o.opens).toBe(c.expect === 'open' ? 1 : 0);
        });
      }

      it('an established connection survives the close; new ones are dropped after the deadline', async () => {
        const o = await established;
        expect(o.held).toEqual({ before: 'before', newAfter: 'timeout', heldAfter: 'after' });
        expect(o.closeReason).toBe('expired');
      });
    });

    /**
     * The reload test's last check (the access opened before the reload ends
     * at its deadline), started there and asserted after the SIGKILL test, so
     * the two waits for a deadline overlap instead of adding up (20 s each).
     */
    let carriedEnd: Promise<string[]> | undefined;

    it('SIGHUP reload: the old sequence no longer opens, the new one does, an access opened before stays (until its deadline: checked below)', async () => {
      const [early, oldSeq, newSeq] = [sources.next(4), sources.next(4), sources.next(4)];
      const until = await knockOpen(early, 4);
      await writeDoorConfig(configPath, { ...DOOR, sequence: NEW_SEQUENCE }, firewall, capture);
      const mark = daemon.lines.length;
      daemon.signal('SIGHUP');
      await daemon.waitFor((l) => l.msg === 'configuration reloaded' || l.msg.startsWith('reload '), 'reload outcome', 20_000, mark);
      expect(daemon.find((l) => l.msg.startsWith('reload '), mark)).toEqual([]);
      await daemon.waitFor(isCaptureReady, 'capture open again after the reload', 20_000, mark);
      expect(Date.now(), 'reload took too long to check the carried access').toBeLessThan(until - 500);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: early }])).toEqual(['open']);

      await Promise.all([
        knockFrom(lab, { host: lab.server.v4, ports: SEQUENCE, from: oldSeq }),
        knockOpen(newSeq, 4, NEW_SEQUENCE, mark),
      ]);
      await sleep(SETTLE_MS);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: oldSeq }])).toEqual(['timeout']);
      expect(daemon.find(lineFor('access opened', oldSeq))).toEqual([]);

      carriedEnd = settled(sleepUntil(until + grace).then(() => probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: early }])));
    });

    it('after SIGKILL of the daemon the kernel still ends the access by its deadline; the door stays shut for others', async () => {
      const from = sources.next(4);
      const until = await knockOpen(from, 4, NEW_SEQUENCE);
      daemon.signal('SIGKILL');
      expect((await daemon.exited).signal).toBe('SIGKILL');
      // The daemon is gone: from here on only the kernel acts.
      expect(Date.now(), 'test too slow to see the access while the daemon is dead').toBeLessThan(until - 600);
      expect(
        await probe(lab, [
          { host: lab.server.v4, port: DOOR_PORT, from },
          { host: lab.server.v4, port: DOOR_PORT, from: lab.clientExtraV4 },
        ]),
      ).toEqual(['open', 'timeout']);
      await sleepUntil(until + grace);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from }])).toEqual(['timeout']);
      const kernel = await snapshotRules(lab, firewall);
      expect(kernel.elements).toEqual([]);
      // Fail closed: the drop rules outlive the daemon.
      expect(kernel.rules).toBe(baseline.rules);
    });

    it('SIGHUP reload (continued): the access opened before the reload ended at its deadline', async () => {
      expect(carriedEnd, 'the reload test did not reach its last check').toBeDefined();
      expect(await carriedEnd).toEqual(['timeout']);
    });

    it('a new daemon after the SIGKILL leaves no duplicate or stale rules, and opens again', async () => {
      daemon = await launchDaemon(lab, configPath, backend);
      const kernel = await snapshotRules(lab, firewall);
      expect(countOurObjects(kernel, firewall)).toEqual(OUR_OBJECTS[firewall]);
      expect(kernel.rules).toBe(baseline.rules);
      expect(kernel.elements).toEqual([]);
      const from = sources.next(6);
      await knockOpen(from, 6, NEW_SEQUENCE); // the config as the reload left it
      expect((await snapshotRules(lab, firewall)).elements).toEqual([`${from} tcp/${DOOR_PORT}`]);
    });

    it('SIGTERM: the daemon exits 0 and leaves its drop rules (the door stays shut); remove-rules then removes every rule and set it made', async () => {
      daemon.signal('SIGTERM');
      expect(await daemon.exited, daemon.recentOutput()).toEqual({ exitCode: 0 });
      expect((await snapshotRules(lab, firewall)).rules).toBe(baseline.rules);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: lab.clientExtraV4 }])).toEqual(['timeout']);
      const removed = await removeRules(lab, firewall);
      expect(removed.exitCode, removed.stderr).toBe(0);
      const kernel = await snapshotRules(lab, firewall);
      expect(countOurObjects(kernel, firewall)).toEqual(NONE_LEFT[firewall]);
      expect(await probe(lab, [{ host: lab.server.v4, port: DOOR_PORT, from: lab.clientExtraV4 }])).toEqual(['open']);
    });
  });
}
