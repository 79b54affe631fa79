// `knockwatch setup-ebpf`: builds the eBPF capture backend where this package
// is installed. The package ships the sources (ebpf/knock.bpf.c, knock.h,
// loader.c, Makefile), not binaries: the loader links the machine's libbpf,
// so it is compiled on the machine that runs it, once, after `npm install -g`.
// The Makefile writes build/ebpf/ next to dist/, which is where
// `run --capture ebpf` looks for the loader (capture/ebpf.ts defaultLoaderPath).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { defaultLoaderPath } from '../capture/ebpf.js';
import { helpOnly } from './args.js';

const USAGE = `usage: knockwatch setup-ebpf

Builds the eBPF capture backend (\`run --capture ebpf\`) inside this
installation: ebpf/ -> build/ebpf/knock.bpf.o and build/ebpf/knockwatch-ebpf.
Needs write access to the installation (root for a global install) and the
Debian packages: clang libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev make gcc
`;

/** The installed package's root: dist/cli/ -> ../../ (src/cli/ -> ../../ in a checkout). */
const PACKAGE_ROOT = new URL('../../', import.meta.url);

export async function main(argv: string[]): Promise<number> {
  const early = helpOnly('setup-ebpf', argv, USAGE);
  if (early !== undefined) return early;
  const sources = fileURLToPath(new URL('ebpf/', PACKAGE_ROOT));
  if (!existsSync(`${sources}Makefile`)) {
    process.stderr.write(`knockwatch setup-ebpf: no eBPF sources at ${sources} (this installation does not ship ebpf/)\n`);
    return 1;
  }
  process.stderr.write(`knockwatch setup-ebpf: building ${sources}\n`);
  // The Makefile's own `check` target names any missing Debian package.
  const r = await execa('make', ['-s', '-C', sources], { stdio: 'inherit', reject: false });
  if (r.failed && r.exitCode === undefined) {
    process.stderr.write(`knockwatch setup-ebpf: cannot run make (${r.code ?? r.message}): apt-get install make\n`);
    return 1;
  }
  if (r.exitCode !== 0) {
    process.stderr.write(`knockwatch setup-ebpf: the build failed (make exited ${r.exitCode}); see above\n`);
    return 1;
  }
  const loader = fileURLToPath(new URL('build/ebpf/knockwatch-ebpf', PACKAGE_ROOT));
  if (!existsSync(loader)) {
    process.stderr.write(`knockwatch setup-ebpf: make succeeded but ${loader} is missing\n`);
    return 1;
  }
  process.stdout.write(`${loader}\n`);
  const used = defaultLoaderPath();
  process.stderr.write(
    used === loader
      ? 'knockwatch setup-ebpf: done; `knockwatch run --capture ebpf` will use it\n'
      : `knockwatch setup-ebpf: done, but KNOCKWATCH_EBPF_LOADER points \`run --capture ebpf\` at ${used}\n`,
  );
  return 0;
}
