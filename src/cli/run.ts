// `knockwatch run [--config F] [--config-owner root|any] [--interface IF] [--firewall nftables|iptables|none]
//                 [--capture pcap|ebpf] [--ebpf-hook tc|xdp] [--log-level L] [--log-format json|pretty]
//                 [--netns NAME] [--remove-rules-on-exit] [--run-dir DIR]`
// The daemon: SIGINT/SIGTERM stop cleanly (our rules stay), SIGHUP reloads the
// config. One per network namespace (instance lock, exit status 3).
import { stat } from 'node:fs/promises';
import { ConfigError, formatProblem, loadConfig } from '../config/index.js';
import { startDaemon } from '../daemon/start.js';
import { DEFAULT_STATE_DIR } from '../daemon/spa-state-store.js';
import { acquireInstanceLock, DEFAULT_RUN_DIR, EXIT_ALREADY_RUNNING, InstanceLockedError, type InstanceLock } from '../firewall/instance-lock.js';
import { createLogger, isLogLevel, isPretty, type Logger } from '../log.js';
import { EXIT_USAGE, parseCommandArgs, reportUsage } from './args.js';
import { missingOwnCapabilities } from './capabilities.js';
import { explainConfigError } from './config-problems.js';
import { CAPTURE_KINDS, FIREWALL_KINDS, type CaptureKind, type FirewallKind, type KnockwatchConfig } from '../types.js';

const USAGE = `usage: knockwatch run [options]

Watches an interface for knocks and opens doors for sources that knock.

  -c, --config FILE        knockwatch config (default: the built-in ssh door)
      --config-owner WHO   root (default) | any: as root, also accept a config file
                           owned by another user, e.g. a container's read-only bind
                           mount (still refused if group or others can write it)
  -i, --interface IF       capture interface, or 'any' (overrides the config)
  -f, --firewall KIND      ${FIREWALL_KINDS.join(' | ')} (overrides the config)
      --capture KIND       ${CAPTURE_KINDS.join(' | ')} (overrides the config)
      --ebpf-hook HOOK     tc | xdp (with --capture ebpf; default tc)
      --netns NAME         run firewall commands in this network namespace
      --remove-rules-on-exit  remove our table/chains and sets on a clean stop (uninstall)
      --run-dir DIR        where the per-namespace instance lock lives (default ${DEFAULT_RUN_DIR})
      --state-dir DIR      where spa and rotating doors keep their state (default ${DEFAULT_STATE_DIR})
  -l, --log-level LEVEL    trace | debug | info | warn | error (default info)
      --log-format FMT     json | pretty (default: pretty on a terminal)

Signals: SIGINT/SIGTERM stop cleanly: our drop rules and the remaining accesses
stay in the kernel, which ends each access at its deadline (remove them with
'knockwatch remove-rules' or --remove-rules-on-exit). SIGHUP reloads the config
file (open accesses stay until their deadline unless their door was removed or
changed; a bad file is refused and the running config stays).

Exit status: 0 clean stop; 1 start-up failure (instance lock, firewall, capture)
or a failure while running; 2 bad arguments or config (a missing config file
says "not found"); ${EXIT_ALREADY_RUNNING} another knockwatch already runs in this network namespace.
A failure is told in one line on stderr, 'knockwatch run: <what went wrong>',
plus a fatal JSON log line on stdout when the log is JSON.

Colours: only when the log is pretty on a terminal, and never with NO_COLOR set.
`;

/** Exit status when start-up (lock, firewall, capture) fails; 2 is bad arguments or config (EXIT_USAGE). */
const EXIT_STARTUP = 1;

/** A message that may hold the stderr of a command, on one line. */
function oneLine(text: string): string {
  return text.trim().split(/\s*\n\s*/).join('; ');
}


function pick<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

interface Overrides {
  interface?: string;
  firewall?: FirewallKind;
  capture?: CaptureKind;
  /** --config-owner: who may own the config file (not a config setting). */
  configOwner?: 'root' | 'any';
}

/**
 * Loads the config file and applies the command-line overrides. loadConfig reads it
 * through src/config/safe-read.ts (as root: refused unless only root can write it and
 * every directory on its path; never hangs on a FIFO) and checks the limits of the
 * capture backend that will run.
 */
async function loadEffective(path: string | undefined, overrides: Overrides): Promise<KnockwatchConfig> {
  const options = {
    ...(overrides.capture !== undefined ? { capture: overrides.capture } : {}),
    ...(overrides.configOwner !== undefined ? { fileOwner: overrides.configOwner } : {}),
  };
  return applyOverrides(await loadConfig(path, options), overrides);
}

/** Says so when --config-owner any let a config file that root does not own through. */
async function logForeignOwner(logger: Logger, path: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const owner = await stat(path).then((st) => st.uid, () => undefined);
  if (owner !== undefined && owner !== 0) {
    logger.warn({ config: path, owner }, `config file owned by uid ${owner}, not root, accepted (--config-owner any)`);
  }
}

function applyOverrides(config: KnockwatchConfig, o: Overrides): KnockwatchConfig {
  return {
    ...config,
    ...(o.interface !== undefined ? { interface: o.interface } : {}),
    ...(o.firewall !== undefined ? { firewall: o.firewall } : {}),
    ...(o.capture !== undefined ? { capture: o.capture } : {}),
  };
}

export async function main(argv: string[]): Promise<number> {
  let values;
  let overrides: Overrides;
  let logger: Logger;
  let jsonLogs = true;
  try {
    ({ values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c' },
      'config-owner': { type: 'string' },
      interface: { type: 'string', short: 'i' },
      firewall: { type: 'string', short: 'f' },
      capture: { type: 'string' },
      'ebpf-hook': { type: 'string' },
      netns: { type: 'string' },
      'remove-rules-on-exit': { type: 'boolean', default: false },
      'run-dir': { type: 'string' },
      'state-dir': { type: 'string' },
      'log-level': { type: 'string', short: 'l', default: 'info' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const level = values['log-level'];
    if (!isLogLevel(level)) throw new Error(`--log-level must be one of trace, debug, info, warn, error, fatal, silent; got '${level}'`);
    const format = pick('log-format', values['log-format'], ['json', 'pretty'] as const);
    if (values.interface !== undefined && !/^[^\s/:]{1,15}$/.test(values.interface)) {
      throw new Error(`--interface: '${values.interface}' is not a valid interface name`);
    }
    overrides = {
      ...(values.interface !== undefined ? { interface: values.interface } : {}),
      ...(values.firewall !== undefined ? { firewall: pick('firewall', values.firewall, FIREWALL_KINDS) } : {}),
      ...(values.capture !== undefined ? { capture: pick('capture', values.capture, CAPTURE_KINDS) } : {}),
      ...(values['config-owner'] !== undefined ? { configOwner: pick('config-owner', values['config-owner'], ['root', 'any'] as const) } : {}),
    };
    pick('ebpf-hook', values['ebpf-hook'], ['tc', 'xdp'] as const);
    const logOptions = { level, ...(format !== undefined ? { pretty: format === 'pretty' } : {}) };
    logger = createLogger(logOptions);
    jsonLogs = !isPretty(logOptions);
  } catch (err) {
    return reportUsage('run', err, USAGE);
  }

  /**
   * A start-up failure: one readable line on stderr, whatever the log format
   * (journald and a terminal both show it), plus the fatal JSON line when the
   * log is JSON (a pretty log would only repeat the stderr line).
   */
  const fatal = (code: number, what: string, msg: string, fields: Record<string, unknown> = {}): number => {
    process.stderr.write(`knockwatch run: ${oneLine(what)}\n`);
    if (jsonLogs) logger.fatal(fields, msg);
    return code;
  };

  const configPath = values.config;
  let config: KnockwatchConfig;
  try {
    config = await loadEffective(configPath, overrides);
  } catch (err) {
    const shown = err instanceof ConfigError ? explainConfigError(err) : (err as Error);
    const what = shown instanceof ConfigError ? shown.problems.map((p) => formatProblem(shown.fileName, p)).join('; ') : shown.message;
    return fatal(EXIT_USAGE, what, 'configuration refused', { err: shown.message });
  }
  if (overrides.configOwner === 'any' && configPath !== undefined) await logForeignOwner(logger, configPath);
  const missing = config.firewall === 'none' ? [] : missingOwnCapabilities();
  if (missing === undefined || missing.length > 0) {
    logger.warn({ missing: missing ?? 'unknown' }, 'capture and firewall changes need CAP_NET_RAW and CAP_NET_ADMIN, which this process lacks');
  }

  // One daemon per network namespace: taken before any firewall change.
  let lock: InstanceLock | undefined;
  if (config.firewall !== 'none') {
    try {
      lock = await acquireInstanceLock({
        ...(values['run-dir'] !== undefined ? { runDir: values['run-dir'] } : {}),
        ...(values.netns !== undefined ? { netns: values.netns } : {}),
      });
    } catch (err) {
      if (err instanceof InstanceLockedError) {
        return fatal(EXIT_ALREADY_RUNNING, err.message, err.message, { lock: err.path, holder: err.holder });
      }
      return fatal(EXIT_STARTUP, `cannot take the instance lock: ${(err as Error).message}`, 'cannot take the instance lock', { err: (err as Error).message });
    }
  }

  let daemon;
  try {
    daemon = await startDaemon(config, {
      logger,
      removeRulesOnExit: values['remove-rules-on-exit'],
      ...(configPath !== undefined ? { configPath } : {}),
      ...(values['state-dir'] !== undefined ? { stateDir: values['state-dir'] } : {}),
      ...(values.netns !== undefined ? { netns: values.netns } : {}),
      ...(values['ebpf-hook'] !== undefined ? { ebpfHook: values['ebpf-hook'] as 'tc' | 'xdp' } : {}),
    });
  } catch (err) {
    lock?.release();
    const message = (err as Error).message;
    return fatal(EXIT_STARTUP, `start-up failed: ${message}`, 'start-up failed', { err: message, stderr: (err as { stderr?: string }).stderr });
  }

  return new Promise<number>((resolve) => {
    let exiting = false;
    const exit = async (code: number, why: string): Promise<void> => {
      if (exiting) return;
      exiting = true;
      logger.info({ why }, 'shutting down');
      try {
        await daemon.stop();
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'clean shutdown failed; kernel timeouts still end every access');
        code = code || 1;
      }
      lock?.release();
      process.off('SIGHUP', onHup);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    let reloading = Promise.resolve();
    const onHup = (): void => {
      reloading = reloading.then(async () => {
        logger.info({ config: configPath ?? '(built-in defaults)' }, 'SIGHUP: reloading configuration');
        let next: KnockwatchConfig;
        try {
          next = await loadEffective(configPath, overrides);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reload refused: the running configuration stays');
          return;
        }
        if (next.firewall !== config.firewall || next.capture !== config.capture) {
          logger.error('reload refused: changing firewall or capture needs a restart');
          return;
        }
        try {
          await daemon.reload(next);
          config = next;
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reload failed');
          void exit(1, 'reload failed');
        }
      });
    };
    // on(), not once(): execa's signal-exit (loaded while a firewall command or
    // the eBPF loader runs) re-raises the signal when, at its turn, its own
    // listener is the only one left, and a once() listener has already been
    // removed by then: the process died by the signal before stop() finished.
    const onInt = (): void => void exit(0, 'SIGINT');
    const onTerm = (): void => void exit(0, 'SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    void daemon.failed.then((err) => {
      process.stderr.write(`knockwatch run: ${oneLine(`capture failed: ${err.message}`)}\n`);
      void exit(EXIT_STARTUP, `capture failed: ${err.message}`);
    });
  });
}
