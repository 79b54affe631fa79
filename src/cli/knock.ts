// `knockwatch knock HOST PORT[:tcp|udp|/tcp|/udp]... [options]`
// knockd's `knock` client syntax: one SYN per TCP step, one datagram per UDP
// step, in order. With --check, afterwards tests whether a port accepts a
// connection from this host: open (exit 0), refused (3) or filtered (4).
import { checkPort, knock, type Family } from '../client/knock.js';
import { parseKnockStep, parsePort } from '../client/port-spec.js';
import type { PortSpec } from '../types.js';
import { parseCommandArgs, usageFailure } from './args.js';

/** --check outcomes other than open; 1 and 2 are failure and bad arguments. */
export const EXIT_REFUSED = 3;
export const EXIT_FILTERED = 4;
const CHECK_EXIT = { open: 0, refused: EXIT_REFUSED, filtered: EXIT_FILTERED } as const;

const USAGE = `usage: knockwatch knock HOST PORT[:tcp|:udp|/tcp|/udp]... [options]
       knockwatch knock HOST --check PORT [options]

Sends one TCP SYN (or, for udp steps, one UDP datagram) per step, in order.

  -d, --delay MS       pause between knocks (default 0)
  -u, --udp            steps without a protocol are udp (default tcp)
  -4, --ipv4           resolve HOST to IPv4 only
  -6, --ipv6           resolve HOST to IPv6 only
  -s, --source ADDR    send from this local address
      --payload TEXT   UDP payload (default 4 zero bytes)
      --check PORT     afterwards, test whether TCP PORT accepts a connection;
                       prints one word: open (connected), refused (a reset:
                       the door let us through but nothing listens) or
                       filtered (no answer within --timeout: still shut)
      --timeout MS     how long --check keeps trying (default 3000)
  -v, --verbose        print each knock as it is sent
  -h, --help           this text

Exit status: 0 sent (with --check: open), 1 failure (host not resolved,
source address unusable), 2 bad arguments; with --check ${EXIT_REFUSED} refused,
${EXIT_FILTERED} filtered.
`;


const DEFAULT_CHECK_TIMEOUT_MS = 3000;
const SYNOPSIS = USAGE.split('\n').slice(0, 2).join('\n');

function usageError(message: string): number {
  return usageFailure('knock', message, `${SYNOPSIS}\n'knockwatch knock --help' lists the options.\n`);
}

function parseMs(text: string, what: string, min: number): number {
  if (!/^\d+$/.test(text)) throw new Error(`invalid ${what} '${text}': expected whole milliseconds`);
  const n = Number(text);
  if (n < min || n > 3_600_000) throw new Error(`invalid ${what} '${text}': expected ${min}-3600000 ms`);
  return n;
}

/** `a.b.c.d:port`, or `[v6]:port` so the port cannot be read as part of the address. */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCommandArgs(
      argv,
      {
        delay: { type: 'string', short: 'd' },
        udp: { type: 'boolean', short: 'u', default: false },
        ipv4: { type: 'boolean', short: '4', default: false },
        ipv6: { type: 'boolean', short: '6', default: false },
        source: { type: 'string', short: 's' },
        payload: { type: 'string' },
        check: { type: 'string' },
        timeout: { type: 'string' },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      true,
    );
  } catch (err) {
    return usageError((err as Error).message);
  }
  const v = args.values;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [host, ...stepTexts] = args.positionals;
  if (host === undefined) return usageError('missing HOST');
  if (v.ipv4 && v.ipv6) return usageError('-4 and -6 exclude each other');
  if (stepTexts.length === 0 && v.check === undefined) return usageError('give at least one PORT to knock on, or --check PORT');
  if (v.timeout !== undefined && v.check === undefined) return usageError('--timeout applies only with --check');

  let steps: PortSpec[];
  let delayMs: number;
  let checkTarget: number | undefined;
  let timeoutMs: number;
  try {
    steps = stepTexts.map((t) => parseKnockStep(t, v.udp ? 'udp' : 'tcp'));
    delayMs = v.delay === undefined ? 0 : parseMs(v.delay, '--delay', 0);
    checkTarget = v.check === undefined ? undefined : parsePort(v.check, '--check port');
    timeoutMs = v.timeout === undefined ? DEFAULT_CHECK_TIMEOUT_MS : parseMs(v.timeout, '--timeout', 1);
  } catch (err) {
    return usageError((err as Error).message);
  }
  const family: Family | undefined = v.ipv4 ? 4 : v.ipv6 ? 6 : undefined;

  try {
    if (steps.length > 0) {
      await knock({
        host,
        steps,
        delayMs,
        family,
        payload: v.payload === undefined ? undefined : Buffer.from(v.payload, 'utf8'),
        sourceAddress: v.source,
        onStep: v.verbose
          ? (step, _i, address) => process.stdout.write(`hitting ${step.protocol} ${hostPort(address, step.port)}\n`)
          : undefined,
      });
    }
    if (checkTarget === undefined) return 0;
    // Right after knocking the daemon needs a moment to open: keep trying until the timeout.
    const result = await checkPort(host, checkTarget, timeoutMs, family, {
      sourceAddress: v.source,
      retryUntilTimeout: steps.length > 0,
    });
    process.stdout.write(`${host} port ${checkTarget}/tcp: ${result}\n`);
    return CHECK_EXIT[result];
  } catch (err) {
    process.stderr.write(`knockwatch knock: ${(err as Error).message}\n`);
    return 1;
  }
}
