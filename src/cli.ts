#!/usr/bin/env node
// knockwatch command-line entry: dispatches `knockwatch <command> ...` to
// src/cli/<command>.ts, each of which returns its exit code.
import { readFileSync } from 'node:fs';

type Main = (argv: string[]) => Promise<number>;

// A fixed table, so a command name can never become an arbitrary import path.
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main: Main }> }> = {
  run: { summary: 'watch an interface and open doors for sources that knock', load: () => import('./cli/run.js') },
  replay: { summary: 'run a capture file through decoding and detection (no firewall)', load: () => import('./cli/replay.js') },
  'check-config': { summary: 'validate a config file and print the effective config', load: () => import('./cli/check-config.js') },
  knock: { summary: 'send a knock sequence (knockd `knock` syntax)', load: () => import('./cli/knock.js') },
  keygen: { summary: 'make an spa key (and TOTP secret) for a user, and print its users: entry', load: () => import('./cli/keygen.js') },
  'hash-passphrase': { summary: 'print the SHA-256 digest of a passphrase (for a sha256 sequence step)', load: () => import('./cli/hash-passphrase.js') },
  'remove-rules': { summary: 'remove our firewall rules (uninstall; a clean stop leaves them in place)', load: () => import('./cli/remove-rules.js') },
  demo: { summary: 'two-namespace live demo: real capture, real nftables (root)', load: () => import('./cli/demo.js') },
  'setup-ebpf': { summary: 'build the eBPF capture backend inside this installation', load: () => import('./cli/setup-ebpf.js') },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: knockwatch <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'knockwatch <command> --help' shows a command's options.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    // A mistake (no command): the usage goes to stderr, as for every usage error.
    process.stderr.write(`knockwatch: no command given\n\n${usage()}`);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!entry) {
    process.stderr.write(`knockwatch: unknown command '${command}'\n\n${usage()}`);
    return 2;
  }
  const mod = await entry.load();
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`knockwatch: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
