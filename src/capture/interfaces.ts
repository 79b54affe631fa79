// Follows an interface's addresses and link state while knockwatch runs, so
// the capture filter can be rebuilt when an address comes or goes and the
// capture reopened when the link comes back up (knockd exits instead,
// jvinet/knock#69).
//
// Two sources: polling (os.networkInterfaces() for addresses - getifaddrs,
// correct in any network namespace - and /sys/class/net for the link flags),
// and `ip -o monitor link address`, whose every line triggers an immediate
// re-read so changes are seen in milliseconds instead of at the next poll.
// The monitor is restarted if it dies; polling alone still works without it.
import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import { Observable } from 'rxjs';

export interface InterfaceState {
  /** Addresses of the interface (of all interfaces for `any`), sorted, without zone index. */
  readonly addresses: readonly string[];
  /** Administratively up (IFF_UP); always true for `any`; false when the interface does not exist. */
  readonly up: boolean;
  /** Kernel interface index: it changes when the interface is deleted and created again. Unknown for `any`. */
  readonly ifindex?: number;
  /**
   * The interface's own MAC address (lower-case aa:bb:cc:dd:ee:ff) when its
   * frames carry an Ethernet header (ARPHRD_ETHER, and `lo`); unset for `any`
   * and for links without one (tun, WireGuard). The pcap filter admits
   * unicast frames only for it: the host drops a frame for another MAC (the
   * knock rule, src/decode/decode.ts), and a promiscuous capture sees them.
   */
  readonly linkAddress?: string;
}

/** The subset of a pino logger that live capture uses. */
export interface LiveLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WatchInterfacesOptions {
  /** Poll period, ms (default 1000). */
  readonly pollMs?: number;
  /** Also react to `ip monitor` (default true). */
  readonly monitor?: boolean;
  readonly logger?: LiveLogger;
  /** Reads the state; replaceable in tests. Default readInterfaceState. */
  readonly read?: (name: string) => InterfaceState;
}

const IFF_UP = 0x1;
/** ARPHRD_* link types whose frames libpcap delivers as Ethernet (DLT_EN10MB). */
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;
const MONITOR_RESTART_MIN_MS = 1000;
const MONITOR_RESTART_MAX_MS = 30_000;
/** A monitor that ran this long before dying restarts at the minimum delay again. */
const MONITOR_HEALTHY_MS = 10_000;

/** Throws on a name that cannot be a Linux interface (or `any`). */
export function checkInterfaceName(name: string): void {
  // IFNAMSIZ is 16 including the NUL; names never hold '/' or blanks (and are used in a /sys path).
  if (typeof name !== 'string' || !/^[^\s/]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new TypeError(`invalid interface name ${JSON.stringify(name)}`);
  }
}

/** Sorted, de-duplicated addresses of one interface, or of all for `any`, from an os.networkInterfaces() table. */
export function addressesOf(table: NodeJS.Dict<NetworkInterfaceInfo[]>, name: string): string[] {
  const entries = name === 'any' ? Object.values(table).flat() : (table[name] ?? []);
  const set = new Set<string>();
  for (const e of entries) if (e?.address) set.add(e.address.replace(/%.*$/, '').toLowerCase());
  return [...set].sort();
}

/** The flags word of /sys/class/net/NAME/flags ("0x1003"), or NaN. */
export function parseFlags(text: string): number {
  return /^\s*0x[0-9a-f]+\s*$/i.test(text) ? parseInt(text, 16) : Number.NaN;
}

function readSys(name: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Current state of an interface (or `any`). */
export function readInterfaceState(name: string): InterfaceState {
  checkInterfaceName(name);
  const table = networkInterfaces();
  const addresses = addressesOf(table, name);
  if (name === 'any') return { addresses, up: true };
  const flags = readSys(name, 'flags');
  if (flags === undefined) {
    // Listed with addresses but not in /sys: this /sys belongs to another
    // network namespace (entered without remounting it). Trust the addresses.
    return Object.hasOwn(table, name) ? { addresses, up: true } : { addresses: [], up: false };
  }
  const ifindex = Number(readSys(name, 'ifindex'));
  const up = (parseFlags(flags) & IFF_UP) !== 0;
  const linkAddress = ethernetAddressOf(readSys(name, 'type'), readSys(name, 'address'));
  return {
    addresses,
    up,
    ...(Number.isInteger(ifindex) && ifindex > 0 ? { ifindex } : {}),
    ...(linkAddress !== undefined ? { linkAddress } : {}),
  };
}

/**
 * The MAC of /sys/class/net/NAME/{type,address} when the link type's frames
 * carry an Ethernet header, else undefined.
 */
export function ethernetAddressOf(type: string | undefined, address: string | undefined): string | undefined {
  const t = Number(type?.trim());
  if (t !== ARPHRD_ETHER && t !== ARPHRD_LOOPBACK) return undefined;
  const mac = address?.trim().toLowerCase();
  return mac !== undefined && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac) ? mac : undefined;
}

export function sameState(a: InterfaceState, b: InterfaceState): boolean {
  return (
    a.up === b.up &&
    a.ifindex === b.ifindex &&
    a.linkAddress === b.linkAddress &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x, i) => x === b.addresses[i])
  );
}

/**
 * Emits the interface's state at once and again on every change. Never
 * completes; errors only for an invalid name. A missing interface is a state
 * (down, no addresses), not an error: it may appear later.
 */
export function watchInterfaces(name: string | 'any', options: WatchInterfacesOptions = {}): Observable<InterfaceState> {
  return new Observable<InterfaceState>((subscriber) => {
    try {
      checkInterfaceName(name);
    } catch (err) {
      subscriber.error(err);
      return undefined;
    }
    const read = options.read ?? readInterfaceState;
    const pollMs = options.pollMs ?? 1000;
    const log = options.logger;
    let last: InterfaceState | undefined;
    let readFailing = false;
    let stopped = false;

    const check = (): void => {
      if (stopped) return;
      let state: InterfaceState;
      try {
        state = read(name);
      } catch (err) {
        if (!readFailing) log?.error({ interface: name, err: (err as Error).message }, 'cannot read interface state');
        readFailing = true;
        return;
      }
      readFailing = false;
      if (last && sameState(last, state)) return;
      last = state;
      subscriber.next(state);
    };

    let checkQueued = false;
    const checkSoon = (): void => {
      if (checkQueued) return;
      checkQueued = true;
      setImmediate(() => {
        checkQueued = false;
        check();
      });
    };

    // ------------------------------------------------ ip monitor
    let monitor: ResultPromise | undefined;
    let restartTimer: NodeJS.Timeout | undefined;
    let restartDelay = MONITOR_RESTART_MIN_MS;
    const startMonitor = (): void => {
      if (stopped) return;
      const started = Date.now();
      const child = execa('ip', ['-o', 'monitor', 'link', 'address'], {
        buffer: false,
        reject: false,
        stdin: 'ignore',
        stderr: 'ignore',
      });
      monitor = child;
      child.stdout?.on('data', checkSoon);
      void child.then((result) => {
        if (stopped || monitor !== child) return;
        monitor = undefined;
        checkSoon(); // a change may have happened while it was down
        if ((result as { code?: string }).code === 'ENOENT') {
          log?.warn({ interface: name }, "'ip' not found: following the interface by polling only");
          return;
        }
        if (Date.now() - started >= MONITOR_HEALTHY_MS) restartDelay = MONITOR_RESTART_MIN_MS;
        log?.warn({ interface: name, exitCode: result.exitCode, signal: result.signal, restartInMs: restartDelay }, 'ip monitor ended; restarting it');
        restartTimer = setTimeout(startMonitor, restartDelay);
        restartDelay = Math.min(restartDelay * 2, MONITOR_RESTART_MAX_MS);
      });
    };

    check();
    const poll = setInterval(check, pollMs);
    if (options.monitor !== false) startMonitor();

    return () => {
      stopped = true;
      clearInterval(poll);
      if (restartTimer) clearTimeout(restartTimer);
      monitor?.kill('SIGTERM');
      monitor = undefined;
    };
  });
}
