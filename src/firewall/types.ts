// The contract every firewall backend (nftables, iptables, none) fulfils, and
// the access records that flow through it.
import type { Door, FirewallKind, PortSpec } from '../types.js';

/**
 * Access granted to one source through one door. `until` is wall-clock time
 * (ms since the Unix epoch) because the kernel counts the remaining time from
 * the moment the element is added; see accessFromDecision() for turning a
 * decision's packet time into it.
 */
export interface Access {
  readonly door: string;
  /** Canonical IP address text (as produced by the decoder). */
  readonly source: string;
  readonly family: 4 | 6;
  /** Must be a subset of the door's `open` ports. */
  readonly ports: readonly PortSpec[];
  readonly until: number;
}

/** What identifies an access for close(): its expiry does not matter there. */
export type AccessKey = Pick<Access, 'door' | 'source' | 'family' | 'ports'>;

export interface FirewallAdapter {
  readonly kind: FirewallKind;
  /** Remove whatever a previous run left behind and install the doors' rules (atomically where the backend can). */
  init(doors: readonly Door[]): Promise<void>;
  /** Grant or refresh access; the kernel ends it at `until` even if this process dies. One transaction (nftables: through its nft session when one runs). */
  open(access: Access): Promise<void>;
  /** End access now. Closing an access that is not (or no longer) open is not an error. */
  close(access: AccessKey): Promise<void>;
  /** Remove everything this adapter created (uninstall: `remove-rules`, `run --remove-rules-on-exit`). */
  shutdown(): Promise<void>;
  /**
   * Stop using the firewall but leave its rules and accesses in the kernel
   * (a clean stop must not open the door ports to everyone; each access ends
   * by its kernel timeout). Backends holding nothing (none) may omit it.
   */
  release?(): Promise<void>;
  /**
   * Whether our rules are still in the kernel as init() installed them
   * (false after `nft flush ruleset`, `iptables -F`, ...). Backends with no
   * kernel state (none) omit it.
   */
  verify?(): Promise<boolean>;
  /**
   * A stop is under way: refuse every open still waiting for the kernel (a
   * flood can leave thousands queued); closes and the batch in flight still
   * finish. Immediate, not ordered behind anything. Backends without a queue omit it.
   */
  dropPending?(): void;
  /**
   * Accesses open right now, read back from the kernel (not from memory), so
   * the answer stays true after failed commands, kernel expiry or a restart.
   * One entry per door and source; `until` is the earliest expiry among its ports.
   */
  list(): Promise<Access[]>;
}

export interface OpenOptions {
  /** Run the door's start command: true (default) for a new access, false for a refresh or a re-application (reload, reinstall). */
  readonly start?: boolean;
}

export interface CloseOptions {
  /** Remove the kernel element (default true); false leaves it to its kernel timeout and only runs the stop command (clean stop). */
  readonly kernel?: boolean;
}

/**
 * What createFirewall returns: a backend wrapped with per-source ordering and
 * the doors' start/stop commands, which run exactly once per access: start on
 * a new open, stop on its close.
 */
export interface Firewall extends FirewallAdapter {
  open(access: Access, options?: OpenOptions): Promise<void>;
  close(access: AccessKey, options?: CloseOptions): Promise<void>;
  release(): Promise<void>;
  /** True when the backend has no kernel state to lose or it is intact. */
  verify(): Promise<boolean>;
  /** After a loss: install the doors again, then re-apply `accesses` (no start commands), exclusive of every other operation. */
  reinstall(doors: readonly Door[], accesses: readonly Access[]): Promise<void>;
  /** Calls `onChange` when the kernel reports that something of ours was deleted (a hint to verify now); returns the stop function. Absent where the backend has no event source. */
  watchChanges?(onChange: () => void): () => void;
}

/** The subset of pino's Logger the firewall uses, so tests can pass anything. */
export interface FirewallLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: FirewallLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Raised for invalid input (door names, addresses, ports, states) before any command runs. */
export class FirewallError extends Error {
  override readonly name = 'FirewallError';
}
