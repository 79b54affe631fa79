// `knockwatch knock HOST PORT[:tcp|udp|/tcp|/udp]... [options]`
// knockd's `knock` client syntax: one SYN per TCP step, one datagram per UDP
// step, in order. With --check, afterwards tests whether a port accepts a
// connection from this host: open (exit 0), refused (3) or filtered (4).
import { checkPort, knock, type Family } from '../client/knock.js';
import { parseKnockStep, parsePort } from '../client/port-spec.js';
import type { PortSpec } from '../types.js';
import { parseCommandArgs, usageFailure } from './args.js';
import { defaultProfilePath } from '../client/profile.js';
import { NOT_SPA, spaKnock } from './knock-spa.js';
import { SECRET_OPTIONS, SECRET_USAGE, secretMode, secretPayloads, secretSteps, secretUsageProblem } from './knock-secret.js';
import { SecretInputCancelled, cancelledExitCode } from './read-secret.js';

/** --check outcomes other than open; 1 and 2 are failure and bad arguments. */
export const EXIT_REFUSED = 3;
export const EXIT_FILTERED = 4;
const CHECK_EXIT = { open: 0, refused: EXIT_REFUSED, filtered: EXIT_FILTERED } as const;

const USAGE = `usage: knockwatch knock HOST PORT[:tcp|:udp|/tcp|/udp]... [options]
       knockwatch knock HOST --check PORT [options]
       knockwatch knock HOST --door NAME --key-file FILE [spa options]
       knockwatch knock SERVER            (a server of the client profile)
       knockwatch knock HOST PORT:udp... --passphrase | --passphrase-file FILE
       knockwatch knock HOST --ports LOW-HIGH --key-file FILE [rotating options]
       knockwatch knock HOST --one-time-file FILE

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

spa (one authenticated datagram; the door has 'spa:' in the server's config):
      --door NAME      the door to open
      --key-file FILE  your key (knockwatch keygen); refused if group/others can read it
      --user NAME      your user name on the server (default: the key file's name
                       without .key)
      --spa-port PORT  the door's UDP port (default 62201)
      --totp           also send a TOTP code, typed without echo (or one line of
                       standard input when it is not a terminal)
      --allow-ip ADDR  open ADDR instead of this host's address (behind NAT;
                       the door needs allow_ip: any)
      --profile FILE   client profile (default ~/.config/knockwatch/client.yaml):
                       'knockwatch knock SERVER' takes host, door, spa_port,
                       key_file, user, totp, allow_ip and check from it

${SECRET_USAGE}
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
        // spa (knock-spa.ts)
        door: { type: 'string' },
        'key-file': { type: 'string' },
        user: { type: 'string' },
        'spa-port': { type: 'string' },
        totp: { type: 'boolean', default: false },
        'allow-ip': { type: 'string' },
        profile: { type: 'string' },
        // passphrase, rotating and one-time knocks (knock-secret.ts)
        ...SECRET_OPTIONS,
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
  // spa: a key file, or a lone SERVER name (the client profile) with no ports to knock.
  const secret = secretMode(v);
  const secretProblem = secretUsageProblem(v, stepTexts.length);
  if (secretProblem !== undefined) return usageError(secretProblem);
  if (secret === undefined && (v['key-file'] !== undefined || (stepTexts.length === 0 && v.check === undefined) || (v.door !== undefined && stepTexts.length === 0))) {
    if (stepTexts.length > 0) return usageError('an spa knock is one datagram: give no ports (the door has its own, --spa-port)');
    if (v.payload !== undefined || v.delay !== undefined || v.udp) return usageError('--payload, --delay and --udp are for port sequences, not spa knocks');
    let spaPort: number | undefined;
    let check: number | undefined;
    let timeoutMs: number;
    try {
      spaPort = v['spa-port'] === undefined ? undefined : parsePort(v['spa-port'], '--spa-port');
      check = v.check === undefined ? undefined : parsePort(v.check, '--check port');
      timeoutMs = v.timeout === undefined ? DEFAULT_CHECK_TIMEOUT_MS : parseMs(v.timeout, '--timeout', 1);
    } catch (err) {
      return usageError((err as Error).message);
    }
    const status = await spaKnock({
      host,
      totp: v.totp,
      timeoutMs,
      verbose: v.verbose,
      profileFile: v.profile ?? defaultProfilePath(),
      ...(v.door !== undefined ? { door: v.door } : {}),
      ...(v['key-file'] !== undefined ? { keyFile: v['key-file'] } : {}),
      ...(v.user !== undefined ? { user: v.user } : {}),
      ...(spaPort !== undefined ? { spaPort } : {}),
      ...(v['allow-ip'] !== undefined ? { allowIp: v['allow-ip'] } : {}),
      ...(check !== undefined ? { check } : {}),
      ...(v.ipv4 ? { family: 4 as const } : v.ipv6 ? { family: 6 as const } : {}),
      ...(v.source !== undefined ? { source: v.source } : {}),
    });
    if (status !== NOT_SPA) return status;
    return usageError(`give at least one PORT to knock on, or --check PORT (spa: --door NAME --key-file FILE, or a server of ${v.profile ?? defaultProfilePath()})`);
  }
  for (const o of ['user', 'spa-port', 'totp', 'allow-ip', 'profile'] as const) {
    if (v[o] !== undefined && v[o] !== false) return usageError(`--${o} is for spa knocks (with --key-file, or a profile SERVER)`);
  }
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

  let payloads: (Uint8Array | undefined)[] | undefined;
  try {
    const computed = await secretSteps(v, Date.now());
    if (computed !== undefined) {
      steps = computed.steps;
      if (v.verbose) process.stdout.write(`${computed.note}\n`);
    }
    payloads = await secretPayloads(v, steps);
  } catch (err) {
    if (err instanceof SecretInputCancelled) {
      process.stderr.write(`knockwatch knock: ${err.message}\n`);
      return cancelledExitCode(err);
    }
    process.stderr.write(`knockwatch knock: ${(err as Error).message}\n`);
    return 1;
  }

  try {
    if (steps.length > 0) {
      await knock({
        host,
        steps,
        delayMs,
        family,
        payload: v.payload === undefined ? undefined : Buffer.from(v.payload, 'utf8'),
        ...(payloads !== undefined ? { payloads } : {}),
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
