// Limits and shared rules that several stages enforce. They live here, with
// no dependencies, so that each stage checks the same rule and so that code
// which only needs a constant (the defaults, the detector) does not load the
// config parser and its schema library.

/** knockd's limit; also bounds the work a single source can cost. */
export const MAX_SEQUENCE_STEPS = 32;
export const MAX_WINDOW_MS = 3_600_000;
export const MAX_GAP_MS = MAX_WINDOW_MS;
/** So a typo cannot open a door for years. */
export const MAX_DURATION_MS = 7 * 24 * 3_600_000;
/** Far above any real need; stops a typo from sizing the source table at billions. */
export const MAX_SOURCES_LIMIT = 10_000_000;
/** Sources with sequence state the detector keeps before evicting the oldest. */
export const DEFAULT_MAX_SOURCES = 100_000;
/** Door names become parts of nftables set and iptables chain names. */
export const DOOR_NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Port arguments (knock steps plus open ports that are not steps; a run of
 * neighbouring ports of one class is one argument, src/port-runs.ts) the eBPF
 * loader accepts on its command line: MAX_PORTS in ebpf/loader.c, which must
 * stay equal to this. Past it the loader fails at start with "bad --first";
 * check-config and `run` report it first (src/config/backend-limits.ts).
 * The pcap capture has no port limit: its filter admits every port.
 */
export const EBPF_MAX_PORTS = 4096;
