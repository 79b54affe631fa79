// `knockwatch remove-rules [--firewall nftables|iptables] [--netns NAME] [--table T] [--chain C] [--set-prefix P]`
// Uninstall: a clean stop of the daemon leaves its drop rules and accesses in
// the kernel (so stopping never opens the door ports to everyone); this
// removes them. It takes the daemon's per-namespace lock first, so it refuses
// while a daemon runs there (which would only reinstall them).
import { createFirewall } from '../firewall/index.js';
import { acquireInstanceLock, DEFAULT_RUN_DIR, EXIT_ALREADY_RUNNING, InstanceLockedError } from '../firewall/instance-lock.js';
import { FIREWALL_KINDS, type FirewallKind } from '../types.js';
import { parseCommandArgs, reportUsage } from './args.js';

/** Every firewall backend that installs rules. */
const KINDS: readonly FirewallKind[] = FIREWALL_KINDS.filter((k) => k !== 'none');

const USAGE = `usage: knockwatch remove-rules [options]

Removes what knockwatch installed (nftables table, or iptables chain and ipsets)
and nothing else. Refused while a knockwatch daemon runs in the namespace.

  -f, --firewall KIND      ${KINDS.join(' | ')} (default nftables)
      --netns NAME         act in this network namespace
      --table NAME         nftables table (default knockwatch)
      --chain NAME         iptables chain (default KNOCKWATCH)
      --set-prefix P       ipset name prefix (default kw)
      --run-dir DIR        where the instance lock lives (default ${DEFAULT_RUN_DIR})

Exit status: 0 removed (or nothing to remove), 1 failure, 2 bad arguments,
${EXIT_ALREADY_RUNNING} a knockwatch daemon runs in this network namespace.
`;


export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandArgs(argv, {
      firewall: { type: 'string', short: 'f', default: 'nftables' },
      netns: { type: 'string' },
      table: { type: 'string' },
      chain: { type: 'string' },
      'set-prefix': { type: 'string' },
      'run-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (!(KINDS as readonly string[]).includes(values.firewall)) throw new Error(`--firewall must be one of ${KINDS.join(', ')}, got '${values.firewall}'`);
  } catch (err) {
    return reportUsage('remove-rules', err, USAGE);
  }
  const kind = values.firewall as FirewallKind;

  let lock;
  try {
    lock = await acquireInstanceLock({
      ...(values['run-dir'] !== undefined ? { runDir: values['run-dir'] } : {}),
      ...(values.netns !== undefined ? { netns: values.netns } : {}),
    });
  } catch (err) {
    const why = err instanceof InstanceLockedError ? `${err.message}; stop it first` : `cannot take the instance lock: ${(err as Error).message}`;
    process.stderr.write(`knockwatch remove-rules: ${why}\n`);
    return err instanceof InstanceLockedError ? EXIT_ALREADY_RUNNING : 1;
  }
  try {
    const firewall = createFirewall(kind, {
      nftSession: false,
      ...(values.netns !== undefined ? { netns: values.netns } : {}),
      ...(values.table !== undefined ? { table: values.table } : {}),
      ...(values.chain !== undefined ? { chain: values.chain } : {}),
      ...(values['set-prefix'] !== undefined ? { setPrefix: values['set-prefix'] } : {}),
    });
    await firewall.shutdown();
    const what = kind === 'nftables' ? `nftables table inet ${values.table ?? 'knockwatch'}` : `iptables chain ${values.chain ?? 'KNOCKWATCH'} and its ipsets`;
    process.stdout.write(`removed ${what} (if present)\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`knockwatch remove-rules: ${(err as Error).message}\n`);
    return 1;
  } finally {
    lock.release();
  }
}
