// A two-host network built from Linux network namespaces joined by a veth pair.
// Used by `knockwatch demo`, the end-to-end tests, the fixture recorder and the
// benchmarks. Everything it creates carries a per-run unique name and is removed
// by destroy(), on process exit and on SIGINT/SIGTERM; namespaces left by a run
// that died (its pid is gone) are swept at the next createLab().
import { execa, type ResultPromise, type Options } from 'execa';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export interface LabHost {
  /** Namespace name (under /run/netns). */
  readonly ns: string;
  /** The veth interface inside the namespace. */
  readonly ifname: string;
  readonly v4: string;
  readonly v6: string;
}

export interface Lab {
  readonly server: LabHost;
  readonly client: LabHost;
  /** Extra client addresses, to act as other sources. */
  readonly clientExtraV4: string;
  readonly clientExtraV6: string;
  /** Run a command inside a host's namespace and wait for it. */
  run(host: LabHost, argv: readonly string[], options?: Options): Promise<{ stdout: string; stderr: string; exitCode: number }>;
  /** Start a long-running command inside a namespace; it is killed by destroy(). */
  spawn(host: LabHost, argv: readonly string[], options?: Options): ResultPromise;
  destroy(): Promise<void>;
}

const PREFIX = 'kwlab';
const live = new Set<Lab>();
let hooksInstalled = false;

export const LAB_V4 = { server: '10.199.0.1', client: '10.199.0.2', extra: '10.199.0.3' } as const;
export const LAB_V6 = { server: 'fd00:6b77::1', client: 'fd00:6b77::2', extra: 'fd00:6b77::3' } as const;

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Why the lab cannot be built here, or undefined when it can. */
export async function labUnavailableReason(): Promise<string | undefined> {
  if (!isRoot()) return 'needs root (network namespaces, veth pairs and firewall rules)';
  try {
    await execa('ip', ['-V']);
  } catch {
    return "needs the 'ip' command (Debian package iproute2)";
  }
  return undefined;
}

async function ip(args: readonly string[]): Promise<void> {
  await execa('ip', args as string[]);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove namespaces made by labs whose process no longer exists. */
async function sweepStale(): Promise<void> {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^kwlab-(\d+)-/.exec(name);
    if (m && !pidAlive(Number(m[1]))) await execa('ip', ['netns', 'del', name], { reject: false });
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Synchronous last resort on exit: async destroy() cannot run there.
  process.on('exit', () => {
    for (const lab of live) destroySync(lab);
  });
  // A persistent listener (not once): with no listener left, a second signal,
  // or execa's signal-exit hook, would end the process before destroy() ran.
  let exiting = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      void Promise.all([...live].map((l) => l.destroy())).finally(() => process.exit(130));
    });
  }
}

function destroySync(lab: Lab): void {
  // An 'exit' handler cannot await, so the last-resort cleanup is synchronous.
  for (const host of [lab.server, lab.client]) spawnSync('ip', ['netns', 'del', host.ns], { stdio: 'ignore' });
}

export async function createLab(tag = 't'): Promise<Lab> {
  const reason = await labUnavailableReason();
  if (reason) throw new Error(`cannot build the namespace lab: ${reason}`);
  await sweepStale();
  installExitHooks();
  const id = `${PREFIX}-${process.pid}-${tag.replace(/[^a-z0-9]/gi, '').slice(0, 8)}${randomBytes(3).toString('hex')}`;
  const server: LabHost = { ns: `${id}-s`, ifname: 'kw0', v4: LAB_V4.server, v6: LAB_V6.server };
  const client: LabHost = { ns: `${id}-c`, ifname: 'kw0', v4: LAB_V4.client, v6: LAB_V6.client };
  const children = new Set<ResultPromise>();
  let destroyed = false;

  const lab: Lab = {
    server,
    client,
    clientExtraV4: LAB_V4.extra,
    clientExtraV6: LAB_V6.extra,
    async run(host, argv, options = {}) {
      const r = await execa('ip', ['netns', 'exec', host.ns, ...argv], { reject: false, ...options });
      return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
    },
    spawn(host, argv, options = {}) {
      const child = execa('ip', ['netns', 'exec', host.ns, ...argv], { reject: false, ...options });
      children.add(child);
      void child.finally(() => children.delete(child)).catch(() => {});
      return child;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(lab);
      for (const c of children) c.kill('SIGKILL');
      await Promise.allSettled([...children]);
      await execa('ip', ['netns', 'del', server.ns], { reject: false });
      await execa('ip', ['netns', 'del', client.ns], { reject: false });
    },
  };
  live.add(lab);
  try {
    await ip(['netns', 'add', server.ns]);
    await ip(['netns', 'add', client.ns]);
    // Created inside the server namespace with its peer moved straight into the
    // client's, so no interface ever appears in the host's namespace.
    await ip(['-n', server.ns, 'link', 'add', server.ifname, 'type', 'veth', 'peer', 'name', client.ifname, 'netns', client.ns]);
    for (const h of [server, client]) {
      await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.ns, 'addr', 'add', `${h.v4}/24`, 'dev', h.ifname]);
      await ip(['-n', h.ns, '-6', 'addr', 'add', `${h.v6}/64`, 'dev', h.ifname, 'nodad']);
      await ip(['-n', h.ns, 'link', 'set', h.ifname, 'up']);
    }
    await ip(['-n', client.ns, 'addr', 'add', `${LAB_V4.extra}/24`, 'dev', client.ifname]);
    await ip(['-n', client.ns, '-6', 'addr', 'add', `${LAB_V6.extra}/64`, 'dev', client.ifname, 'nodad']);
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}

/** Names of namespaces currently present that belong to labs (for leak checks). */
export function labNamespaces(): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(`${PREFIX}-`));
  } catch {
    return [];
  }
}
