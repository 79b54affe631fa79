// `knockwatch replay FILE|- [--config F] [--json] [--verbose]`
// Runs a capture file through exactly the decode and detect stages the live
// daemon uses, with no firewall. Decisions go to stdout, a summary to stderr.
import { readCaptureFile, type CaptureFileStats } from '../capture/file.js';
import { decodeFrames } from '../decode/operator.js';
import { createDecodeStats } from '../decode/decode.js';
import { detectKnocks } from '../detect/operator.js';
import { replayStores } from './replay-spa.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import type { Decision } from '../types.js';
import { decisionToJSON, decisionToText } from './format.js';
import { progressBar, stdoutLines } from './output.js';
import { EXIT_USAGE, parseCommandArgs, reportUsage, usageFailure } from './args.js';
import { explainConfigError } from './config-problems.js';

const USAGE = `usage: knockwatch replay FILE|- [--config FILE] [--json] [--verbose] [--quiet]

Replays a capture file (pcap, nanosecond pcap or pcapng; '-' reads stdin)
through decoding and detection. No firewall is touched.

  -c, --config FILE   knockwatch config (default: the built-in ssh door)
      --json          one JSON object per line
  -v, --verbose       also print knock, progress and reset decisions
  -q, --quiet         no summary on stderr
`;

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCommandArgs(
      argv,
      {
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean', default: false },
        verbose: { type: 'boolean', short: 'v', default: false },
        quiet: { type: 'boolean', short: 'q', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      true,
    );
  } catch (err) {
    return reportUsage('replay', err, USAGE);
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.positionals.length !== 1) {
    return usageFailure('replay', `expected exactly one capture file (or '-'), got ${args.positionals.length}`, USAGE);
  }
  const file = args.positionals[0];

  let config;
  try {
    // Replay runs no command and changes no firewall, so as root it reads a config others own
    // (a checkout of your own under sudo); FIFOs and devices are refused all the same.
    config = await loadConfig(args.values.config, { ownershipRules: false });
  } catch (err) {
    const shown = err instanceof ConfigError ? explainConfigError(err) : (err as Error);
    process.stderr.write(`knockwatch replay: ${shown.message}\n`);
    return EXIT_USAGE;
  }

  // spa doors: the users' keys, and a replay cache and TOTP state in memory (never the state directory).
  let stores;
  try {
    stores = await replayStores(config, args.values.config);
  } catch (err) {
    const shown = err instanceof ConfigError ? explainConfigError(err) : (err as Error);
    process.stderr.write(`knockwatch replay: ${shown.message}\n`);
    return EXIT_USAGE;
  }

  const bar = progressBar();
  // Lines and the bar may share one terminal: the bar is wiped before each write.
  const out = stdoutLines(process.stdout, 64 * 1024, () => bar.clear());
  const verbose = args.values.verbose;
  const render = args.values.json ? (d: Decision) => JSON.stringify(decisionToJSON(d)) : decisionToText;
  const fileStats: CaptureFileStats = { frames: 0, bytes: 0 };
  const decodeStats = createDecodeStats();
  let opens = 0;
  const started = performance.now();

  const failure = await new Promise<Error | undefined>((resolve) => {
    let failed = false;
    const subscription = readCaptureFile(file, { stats: fileStats, onProgress: (done, total) => bar.update(done, total) })
      .pipe(decodeFrames(decodeStats), detectKnocks(config.doors, { maxSources: config.maxSources, stores }))
      .subscribe({
        next(d) {
          if (failed) return;
          try {
            if (d.type === 'open') opens++;
            if (verbose || d.type === 'open' || d.type === 'close') out.line(render(d));
          } catch (err) {
            // Thrown out of next(), this would escape RxJS as an uncaught
            // exception: a stack trace and no summary. End the replay instead.
            failed = true;
            resolve(err instanceof Error ? err : new Error(String(err)));
            queueMicrotask(() => subscription.unsubscribe());
          }
        },
        error: (err: Error) => resolve(err),
        complete: () => resolve(undefined),
      });
  });
  bar.clear();
  out.flush();

  const elapsed = (performance.now() - started) / 1000;
  if (!args.values.quiet) {
    const rate = elapsed > 0 ? decodeStats.frames / elapsed : 0;
    process.stderr.write(
      `packets ${decodeStats.frames}, knocks ${decodeStats.knocks}, malformed ${decodeStats.malformed}, ` +
        `opens ${opens}, elapsed ${elapsed.toFixed(3)} s, ${formatRate(rate)} packets/s\n`,
    );
  }
  if (failure) {
    process.stderr.write(`knockwatch replay: ${failure.message}\n`);
    return 1;
  }
  return 0;
}

function formatRate(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)} M`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)} k`;
  return rate.toFixed(0);
}
