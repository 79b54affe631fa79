// What the capture-file readers accept, in one place: each bound keeps a
// corrupt or hostile file from making us allocate, loop or produce a value a
// later stage cannot handle.

/** Largest captured packet accepted (libpcap's MAXIMUM_SNAPLEN). */
export const MAX_PACKET_BYTES = 262_144;
/** Largest pcapng block accepted: bounds what a corrupt length can make us allocate. */
export const MAX_BLOCK_BYTES = 16 * 1024 * 1024;
/**
 * Interface descriptions per pcapng section. Each costs ~130 bytes of heap
 * once parsed: without a cap, 100 MB of 20-byte descriptions grew the process
 * to 689 MB RSS. 65,536 is the most an obsolete packet block's 16-bit
 * interface id can name, and far above any real capture (dumpcap writes one
 * per captured interface).
 */
export const MAX_INTERFACES = 65_536;
/**
 * Packet times accepted, ms since the epoch: [1970-01-01, 10000-01-01). A
 * pcapng timestamp, resolution and offset reach ±2^64 units, far beyond what
 * a Date holds (±8.64e15 ms: toISOString throws a RangeError). No capture
 * predates 1970 (classic pcap cannot even store it), and below year 10000 an
 * ISO 8601 time keeps its 4-digit year; the detector's deadlines (packet time
 * + at most 7 days) then stay far inside the Date range. Classic pcap's
 * unsigned 32-bit seconds end in 2106, inside this range.
 */
export const FIRST_PACKET_TIME_MS = 0;
export const END_PACKET_TIME_MS = Date.UTC(10000, 0, 1);
