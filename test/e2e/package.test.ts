// The npm package as a user gets it: `npm pack` of this checkout, installed
// globally into a temporary prefix (runtime dependencies only, from the npm
// cache or registry; the `cap` addon builds on install), then the installed
// `knockwatch` binary: --version, check-config on the shipped example, replay
// of a recorded fixture, and `setup-ebpf` building the eBPF backend inside the
// installation. Uses dist/ as built by scripts/setup.sh (packs with
// --ignore-scripts, so this test does not rebuild).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli } from './support/daemon.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'fixtures/ipv4-knock.pcap');
const FIXTURE_CONFIG = join(ROOT, 'fixtures/default.yaml');
const FIXTURE_EXPECTED = join(ROOT, 'fixtures/ipv4-knock.expected.jsonl');
/** npm install builds the `cap` addon with node-gyp: minutes on a loaded 2-core machine. */
const INSTALL_TIMEOUT_MS = 600_000;

const REQUIRED_FILES = [
  'package.json',
  'LICENSE',
  'README.md',
  'CHANGELOG.md',
  'dist/cli.js',
  'ebpf/knock.bpf.c',
  'ebpf/knock.h',
  'ebpf/loader.c',
  'ebpf/Makefile',
  'examples/knockwatch.yaml',
  'deploy/knockwatch.service',
  'deploy/knockwatch.service.d/ebpf.conf',
  'deploy/compose/knockwatch.yaml',
];

interface PackJson {
  filename: string;
  files: { path: string }[];
}

/** Why `setup-ebpf` cannot build here (the Makefile's own check), or undefined. */
async function ebpfToolchainMissing(): Promise<string | undefined> {
  const r = await execa('make', ['-s', '-C', join(ROOT, 'ebpf'), 'check'], { reject: false });
  return r.exitCode === 0 ? undefined : `eBPF toolchain missing: ${r.stderr.trim() || r.message}`;
}

describe('npm package: packed, installed globally, run', () => {
  let dir: string;
  let tarball: string;
  let packed: string[];
  let prefix: string;
  let bin: string;
  let installed: string;

  beforeAll(async () => {
    requireBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'knockwatch-pkg-'));
    const started = performance.now();
    const pack = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
    const info = (JSON.parse(pack.stdout) as PackJson[])[0];
    tarball = join(dir, info.filename);
    packed = info.files.map((f) => f.path);
    prefix = join(dir, 'prefix');
    console.log(`packed ${info.filename} (${packed.length} files); npm install -g into ${prefix} (builds the cap addon, ~1 min)`);
    // --prefer-offline: the packages `npm ci` already fetched come from the cache.
    // Not niced: vitest runs one file at a time here, and under a CPU hog (npm run test:stress) a
    // niced compile of the addon got too little CPU to finish in 300 s.
    await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-fund', '--no-audit', tarball], {
      cwd: dir,
      timeout: INSTALL_TIMEOUT_MS,
    });
    console.log(`npm pack + npm install -g took ${Math.round((performance.now() - started) / 1000)} s`);
    bin = join(prefix, 'bin/knockwatch');
    installed = join(prefix, 'lib/node_modules/knockwatch');
  }, INSTALL_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ships dist, the eBPF sources, examples, deploy, LICENSE, README and CHANGELOG', () => {
    for (const f of REQUIRED_FILES) expect(packed, f).toContain(f);
    // Sources and tests are not shipped; neither is a host-built binary.
    expect(packed.filter((p) => /^(src|test|node_modules|build)\//.test(p))).toEqual([]);
  });

  it("package.json's bin, main and exports name files that exist in the package", async () => {
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as {
      bin?: Record<string, string>;
      main?: string;
      exports?: Record<string, string>;
    };
    const named = [...Object.values(pkg.bin ?? {}), ...(pkg.main ? [pkg.main] : []), ...Object.values(pkg.exports ?? {})];
    expect(named.length).toBeGreaterThan(0);
    for (const f of named) expect(existsSync(join(installed, f)), f).toBe(true);
  });

  it('knockwatch --version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await execa(bin, ['--version']);
    expect(r.stdout.trim()).toBe(version);
  });

  it('check-config accepts the shipped example', async () => {
    const r = await execa(bin, ['check-config', join(installed, 'examples/knockwatch.yaml')], { reject: false });
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(r.stdout).toContain('name: ssh');
  });

  it('replay of a recorded knock prints the golden open/close lines', async () => {
    const r = await execa(bin, ['replay', FIXTURE, '--config', FIXTURE_CONFIG, '--json'], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe((await readFile(FIXTURE_EXPECTED, 'utf8')).trim());
  });

  it('setup-ebpf builds the eBPF program and loader inside the installation', async (ctx) => {
    const missing = await ebpfToolchainMissing();
    if (missing) {
      console.warn(`[skipped] setup-ebpf build: ${missing}`);
      ctx.skip();
    }
    const r = await execa(bin, ['setup-ebpf'], { reject: false, timeout: 300_000 });
    expect({ exitCode: r.exitCode, stderr: r.exitCode === 0 ? '' : r.stderr }).toEqual({ exitCode: 0, stderr: '' });
    const loader = join(installed, 'build/ebpf/knockwatch-ebpf');
    expect(r.stdout.trim()).toBe(loader);
    expect(existsSync(join(installed, 'build/ebpf/knock.bpf.o'))).toBe(true);
    const help = await execa(loader, ['--help'], { reject: false });
    expect(`${help.stdout}${help.stderr}`).toMatch(/usage/i);
  }, 320_000);
});
