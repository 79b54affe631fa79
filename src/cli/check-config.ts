// `knockwatch check-config [FILE] [--json]`: validate a config file and print
// the effective configuration (defaults filled in, durations and ports
// normalised). Exit 0 when valid, 2 on any problem or usage error.
import { ConfigError, configToJSON, exceededBackendLimits, formatConfig, loadConfig } from '../config/index.js';
import { hasSpaDoors, keyBaseDir, loadSpaUsers } from '../config/users.js';
import type { KnockwatchConfig } from '../types.js';
import { EXIT_USAGE, parseCommandArgs, reportUsage, usageFailure } from './args.js';
import { configErrorToJSON, explainConfigError } from './config-problems.js';

const USAGE = `usage: knockwatch check-config [FILE] [--json]

Validate FILE (YAML) and print the effective configuration. Without FILE,
print the built-in defaults.

options:
  --json      print JSON instead of YAML (same keys; also a valid config file);
              a bad file prints {"valid": false, "file", "problems": [{file,
              line, column, field, message}]} on stdout instead, exit 2
  -h, --help  show this help
`;

export async function main(argv: string[]): Promise<number> {
  let values: { json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true));
  } catch (err) {
    return reportUsage('check-config', err, USAGE);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 1) {
    return usageFailure('check-config', `expected at most one FILE, got ${positionals.length}`, USAGE);
  }
  const file = positionals[0];

  let cfg: KnockwatchConfig;
  try {
    cfg = await loadConfig(file);
    // spa users' key and TOTP files: read and checked as `run` does (modes, text, duplicate keys).
    if (file !== undefined && hasSpaDoors(cfg.doors)) await loadSpaUsers(cfg.users ?? [], file, { baseDir: keyBaseDir(file) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const explained = explainConfigError(err);
    // --json: the problems are the output a script reads, so they go where the config would have.
    if (values.json) process.stdout.write(`${JSON.stringify(configErrorToJSON(explained), null, 2)}\n`);
    else process.stderr.write(`knockwatch check-config: ${explained.message}\n`);
    return EXIT_USAGE;
  }
  // The selected backend's limits are errors (in loadConfig); the other's are
  // worth knowing before someone starts it with --capture.
  for (const limit of exceededBackendLimits(cfg.doors)) {
    if (limit.capture === cfg.capture) continue;
    process.stderr.write(
      `knockwatch check-config: warning: ${file ?? 'defaults'}: doors: ${limit.message} ` +
        `(this config selects capture ${cfg.capture}; \`run --capture ${limit.capture}\` would refuse it)\n`,
    );
  }

  // A one_time door whose file has no unused line left cannot open (the daemon warns too).
  for (const d of cfg.doors) {
    if (d.kind === 'one_time' && d.sequences?.length === 0) {
      process.stderr.write(`knockwatch check-config: warning: ${d.file}: door '${d.name}' has no unused one-time sequence left: it cannot open until lines are added\n`);
    }
  }

  if (values.json) {
    process.stdout.write(`${JSON.stringify(configToJSON(cfg), null, 2)}\n`);
  } else {
    // A newline in the file name must not end the comment and inject YAML.
    const source = file === undefined ? 'built-in defaults (no FILE given)' : JSON.stringify(file);
    process.stdout.write(`# knockwatch effective configuration from ${source}\n${formatConfig(cfg)}`);
  }
  return 0;
}
