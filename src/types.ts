// Types shared by every stage. Data flows one way:
//   capture (Frame) -> decode (KnockEvent) -> detect (Decision) -> firewall
// Each stage imports only from here and from stages before it.

export type Protocol = 'tcp' | 'udp';

/** A port with its protocol, as written `PORT/proto` in configs and output. */
export interface PortSpec {
  readonly port: number;
  readonly protocol: Protocol;
}

/**
 * One captured link-layer frame. `time` is the capture timestamp in
 * milliseconds since the Unix epoch (fractional: a double keeps ~0.25 us
 * resolution at today's epoch values). Everything downstream takes its notion
 * of time from this field, never from the wall clock.
 */
export interface Frame {
  readonly time: number;
  /** pcap LINKTYPE_* value of the frame's link layer. */
  readonly linkType: number;
  /** Captured bytes. Owned by the frame: capture sources never reuse it. */
  readonly data: Uint8Array;
  /** Length on the wire (may exceed data.length when the snaplen cut it). */
  readonly origLength: number;
  /** Byte offset of the record in its capture file, or -1 for live capture. */
  readonly offset: number;
}

/** A knock candidate: a TCP segment with SYN set and ACK clear, or a UDP datagram. */
export interface KnockEvent {
  readonly time: number;
  readonly family: 4 | 6;
  /** Source address in canonical text form (IPv4 dotted quad, RFC 5952 IPv6). */
  readonly source: string;
  /**
   * Optional 16-bit fold of the source address bytes (sourceFold()). Not
   * unique: the detector uses it only to skip its Map for sources it cannot
   * hold, which under a spoofed flood is nearly every packet.
   */
  readonly sourceFold?: number;
  readonly destination: string;
  readonly protocol: Protocol;
  readonly sourcePort: number;
  /** Destination port: the port knocked on. */
  readonly port: number;
  /** TCP flags byte (0 for UDP). */
  readonly tcpFlags: number;
  /** Transport payload (UDP data; TCP SYN data is rare but kept). */
  readonly payload: Uint8Array;
  /** True for the first fragment of a fragmented IP packet (its payload is not the whole datagram). */
  readonly fragmented?: boolean;
}

/** What every door kind shares: who it is, and what a completed knock opens for how long. */
export interface DoorCommon {
  readonly name: string;
  /** Ports opened for a source that completed the knock. */
  readonly open: readonly PortSpec[];
  /** How long that source may start new connections, ms. */
  readonly durationMs: number;
  /** Optional argument arrays run on open/close; %IP%, %PORT%, %DOOR% substituted. */
  readonly startCommand?: readonly string[];
  readonly stopCommand?: readonly string[];
}

/** One step of a sequence door: a port, and for a passphrase step the digest its datagram must carry. */
export interface SequenceStep extends PortSpec {
  /** Lowercase hex SHA-256 of a passphrase (spknock); UDP steps only: the datagram's payload must spell it. */
  readonly sha256?: string;
}

/** A door whose knock is an ordered list of ports (knockd's kind). */
export interface SequenceDoor extends DoorCommon {
  readonly kind: 'sequence';
  readonly sequence: readonly SequenceStep[];
  /** The whole sequence must complete within this many ms of its first step. */
  readonly windowMs: number;
  /** Optional maximum time between two consecutive steps, ms. */
  readonly gapMs?: number;
}

/**
 * A door opened by one authenticated UDP datagram (single packet
 * authorization; src/spa/ has the format and the rules).
 */
export interface SpaDoor extends DoorCommon {
  readonly kind: 'spa';
  /** UDP port the datagram is sent to (never bound; the firewall drops it). */
  readonly port: number;
  /** Users who may open it (names from the top-level `users:`); undefined: every user. */
  readonly users?: readonly string[];
  /** The datagram must also carry the user's current TOTP code. */
  readonly totp: boolean;
  /** 'source': the sealed address must be the packet's source; 'any': open the sealed address (NAT). */
  readonly allowIp: 'source' | 'any';
  /** Accepted difference between the client's clock and ours, either way, ms (<= 5 min). */
  readonly maxAgeMs: number;
}

/** Key bytes held in memory: written as '[secret]' by JSON (logs) and util.inspect, never as bytes. */
export interface SecretBytes {
  readonly bytes: Uint8Array;
  toJSON(): string;
}

/**
 * A door whose sequence changes every period: the ports of period n are
 * derived from a key (detect/rotating-ports.ts), each period's sequence opens
 * once, and periods n-1..n+1 are accepted (clock skew).
 */
export interface RotatingDoor extends DoorCommon {
  readonly kind: 'rotating';
  /** The key file as configured (a relative path is taken from the config file's directory). */
  readonly keyFile: string;
  /** The key, once read (config/door-files.ts); without it the door never opens. */
  readonly key?: SecretBytes;
  /** Ports per sequence, 1-32. */
  readonly steps: number;
  /** A new sequence every periodMs (period n = floor(unix ms / periodMs)). */
  readonly periodMs: number;
  /** Inclusive range the ports are drawn from. */
  readonly portRange: { readonly low: number; readonly high: number };
  readonly protocol: Protocol;
  readonly windowMs: number;
  readonly gapMs?: number;
}

/** One unused sequence of a one-time file (knockd's one_time_sequences). */
export interface OneTimeEntry {
  /** 1-based line in the file. */
  readonly line: number;
  /** The line as written, trimmed: what marking it used must find again. */
  readonly text: string;
  readonly sequence: readonly PortSpec[];
}

/** A door whose valid sequence is the first unused line of a file; each line opens once. */
export interface OneTimeDoor extends DoorCommon {
  readonly kind: 'one_time';
  /** The file as configured (a relative path is taken from the config file's directory). */
  readonly file: string;
  /** Its unused sequences in order, once read (config/door-files.ts); without them the door never opens. */
  readonly sequences?: readonly OneTimeEntry[];
  readonly windowMs: number;
  readonly gapMs?: number;
}

/**
 * A door, tagged by its kind. Each kind is one module under detect/ (its
 * matcher, registered in detect/kinds.ts) and one under config/ (its keys,
 * registered in config/door-kinds.ts).
 */
export type Door = SequenceDoor | SpaDoor | RotatingDoor | OneTimeDoor;
export type DoorKind = Door['kind'];

export type ResetReason =
  | 'wrong-port' // a SYN/UDP to a port that is not the next step
  | 'wrong-protocol' // the next step's port, but the other protocol
  | 'window' // the whole sequence took longer than the window
  | 'gap' // two steps further apart than the door's gap
  | 'wrong-payload' // the next step's port, but not the datagram its passphrase step requires
  | 'evicted'; // state dropped because the source table was full

interface DecisionBase {
  /** Packet time (ms since epoch) at which the decision was taken. */
  readonly time: number;
  readonly door: string;
  readonly source: string;
}

/** A knock event that touched a door (a first step, or any knock from a source in progress). */
export interface KnockDecision extends DecisionBase {
  readonly type: 'knock';
  readonly port: number;
  readonly protocol: Protocol;
}
export interface ProgressDecision extends DecisionBase {
  readonly type: 'progress';
  /** 1-based number of steps completed so far. */
  readonly step: number;
  readonly of: number;
}
export interface ResetDecision extends DecisionBase {
  readonly type: 'reset';
  readonly reason: ResetReason;
  /** Steps completed before the reset. */
  readonly step: number;
  readonly port?: number;
  readonly protocol?: Protocol;
}
export interface OpenDecision extends DecisionBase {
  readonly type: 'open';
  readonly ports: readonly PortSpec[];
  /** Absolute deadline (ms since epoch, packet time) of the access. */
  readonly until: number;
  /** True when this completion extended an access that was already open. */
  readonly refreshed: boolean;
}
export interface CloseDecision extends DecisionBase {
  readonly type: 'close';
  readonly ports: readonly PortSpec[];
  /** 'reload': the door was removed or its open ports or commands changed by a config reload. */
  readonly reason: 'expired' | 'shutdown' | 'reload';
}

/**
 * A packet a door judged on its own and refused (a single-packet kind such as
 * spa): counted and logged by reason, never answered on the wire.
 */
export interface RejectDecision extends DecisionBase {
  readonly type: 'reject';
  readonly reason: string;
}

export type Decision = KnockDecision | ProgressDecision | ResetDecision | OpenDecision | CloseDecision | RejectDecision;

/** The firewall backends, listed once: the type, the config schema and the CLI derive from it. */
export const FIREWALL_KINDS = ['nftables', 'iptables', 'none'] as const;
export type FirewallKind = (typeof FIREWALL_KINDS)[number];
/** The capture backends, listed once. */
export const CAPTURE_KINDS = ['pcap', 'ebpf'] as const;
export type CaptureKind = (typeof CAPTURE_KINDS)[number];

/** `a, b or c`, for messages naming the choices. */
export function oneOf(choices: readonly string[]): string {
  return choices.length <= 1 ? choices.join('') : `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}`;
}

/** The effective, validated configuration. */
export interface KnockwatchConfig {
  readonly interface: string;
  readonly firewall: FirewallKind;
  readonly capture: CaptureKind;
  /** Cap on sources with sequence state; the oldest is evicted beyond it. */
  readonly maxSources: number;
  readonly doors: readonly Door[];
  /** spa users (top-level `users:`): names and key file paths; the keys are read by config/users.ts. */
  readonly users?: readonly SpaUserConfig[];
}

/** One spa user as configured: where its secrets are (never the secrets themselves). */
export interface SpaUserConfig {
  readonly name: string;
  /** One key file, or two while a key is being rotated. */
  readonly keyFiles: readonly string[];
  readonly totpFile?: string;
}

/** 16-bit fold of address bytes at `off` (4 for IPv4, 16 for IPv6); see KnockEvent.sourceFold. */
export function sourceFold(b: Uint8Array, off: number, length: 4 | 16): number {
  let h = 0;
  for (let i = 0; i < length; i += 2) h ^= (b[off + i] << 8) | b[off + i + 1];
  return h;
}

export function formatPort(p: PortSpec): string {
  return `${p.port}/${p.protocol}`;
}
