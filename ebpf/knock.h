/* Layout shared by the eBPF program (knock.bpf.c) and its loader (loader.c).
 * Kept free of kernel and libc headers so both sides can include it. */
#ifndef KNOCKWATCH_KNOCK_H
#define KNOCKWATCH_KNOCK_H

/* Bytes copied from the start of the frame into each event: at least
 * KW_SNAPLEN (and never more than the frame), more when the transport header
 * ends later (IPv6 extension headers), up to KW_CAPTURE_MAX. The user-space
 * decoder must see every header the program looked at: it takes the decision
 * again and ignores a frame whose headers were cut (src/decode/decode.ts). */
#define KW_SNAPLEN 256
#define KW_CAPTURE_MAX 4096

/* Watched ports: bitmaps over (protocol, port), one bit per key
 * (udp << 16 | port), each stored as KW_WATCH_WORDS 64-bit array entries;
 * class c's bitmap starts at entry c * KW_WATCH_WORDS. */
#define KW_WATCH_WORDS (2 * 65536 / 64)

/* Port classes. */
enum kw_class {
	KW_CLASS_STEP = 0,  /* any knock step: always sent up */
	KW_CLASS_FIRST = 1, /* a door's first step: also makes the source active */
	KW_CLASS_OPEN = 2,  /* a door's open port: sent up for an active source, which stays active */
	KW_CLASSES = 3,
};

/* Default capacity of the LRU map of sources that knocked on a watched port. */
#define KW_ACTIVE_DEFAULT 65536

/* Capacity of the map of this host's own addresses (knocks must be sent to one). */
#define KW_LOCAL_MAX 4096

/* XDP only (tc reads skb->pkt_type): each attached Ethernet interface's own
 * MAC, keyed by ifindex (the loader fills it at attach and on every counters
 * tick), so a unicast frame for another host's MAC is not a knock. */
#define KW_MACS_MAX 64
struct kw_mac {
	unsigned char addr[6];
	unsigned char pad[2];
};

/* Per-CPU counter slots. */
enum kw_counter {
	KW_SEEN = 0,       /* packets that reached the program */
	KW_CANDIDATES = 1, /* of those, knocks by the rule (TCP SYN / UDP the host takes) to a local address */
	KW_EVENTS = 2,     /* events committed to the ring buffer */
	KW_DROPS = 3,      /* events lost because the ring buffer was full */
	KW_COUNTERS = 4,
};

/* Link layer of the captured bytes, as pcap LINKTYPE_* values. */
#define KW_LINK_ETHERNET 1
#define KW_LINK_RAW 101

/* Address key of the "active" (sources) and "local" (destinations) maps:
 * family 4 or 6, address in the first 4 or all 16 bytes, the rest zero. No
 * padding, so hashing is exact. */
struct kw_source {
	unsigned int family;
	unsigned char addr[16];
};

/* One ring-buffer event: a packet that user space must see. Records are
 * reserved at one of two fixed sizes, data[KW_SNAPLEN] or data[KW_CAPTURE_MAX],
 * so the ring is not filled with 4 KiB records for ordinary small knocks;
 * cap_len says how much of data is the frame. */
struct kw_event {
	unsigned long long ktime_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	unsigned int wire_len;
	unsigned int ifindex;
	unsigned short cap_len;
	unsigned short link;
	unsigned int reserved;
	unsigned char data[];
};

#endif
