// pcap LINKTYPE_* values the decoder understands (https://www.tcpdump.org/linktypes.html).

export const LinkType = {
  /** BSD loopback: 4-byte address family in the capturing host's byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** DLT_RAW as numbered on some BSDs (12) and OpenBSD (14); raw IPv4/IPv6. */
  RAW_12: 12,
  RAW_14: 14,
  /** Raw IPv4 or IPv6, version taken from the first nibble. */
  RAW: 101,
  /** OpenBSD loopback: address family in network byte order. */
  LOOP: 108,
  /** Linux cooked capture v1 (`-i any` with libpcap < 1.10 and the npm `cap` addon). */
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  /** Linux cooked capture v2 (`tcpdump -i any` with libpcap >= 1.10). */
  LINUX_SLL2: 276,
} as const;

export type LinkTypeValue = (typeof LinkType)[keyof typeof LinkType];

/** Linux packet type of a packet this host sent (SLL/SLL2 header). */
export const PACKET_OUTGOING = 4;
