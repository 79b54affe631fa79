// SPDX-License-Identifier: MIT OR GPL-2.0
/* knockwatch kernel-side filter: sees every packet arriving on an interface
 * (tc ingress or XDP) and hands user space only what detection needs:
 *   - a knock to a knock step; a door's first step makes the source "active"
 *     (only a first step starts sequence state in user space);
 *   - the first knock of an active source to any other port, so detection
 *     can reset that source's sequence; the source then stops being active;
 *   - except a door's open port: every such knock of an active source is sent
 *     up and the source stays active. The door's own sequence ignores it (so
 *     later wrong ports must still be seen), another door's may reset on it.
 * What a knock is, is the rule written down in src/decode/decode.ts: a TCP SYN
 * (ACK clear) or UDP datagram that this host itself would accept, to one of
 * its own addresses. parse() below is a transcription of that decoder, check
 * for check (same order of headers, same length tests, any number of IPv6
 * extension headers up to the loop bound, IPv4 header checksum, AH/VLAN/
 * other-host ignored), because the program takes decisions the decoder cannot
 * undo: it hides packets and uses up a source's one wrong port. So:
 *   - it changes a source's state only for a packet the rule counts;
 *   - a packet it cannot decide (a header chain longer than the loop bound,
 *     or a transport header past KW_CAPTURE_MAX) is passed up unchanged for
 *     the decoder to decide, never hidden;
 *   - an event carries the frame at least up to the end of the transport
 *     header, so the decoder sees everything the program looked at.
 * Addresses (the decoder leaves them to the capture): the destination must be
 * in the "local" map (every address of the namespace, kept in step by the
 * loader), never a loopback address (none arrives from the wire; the loader
 * never attaches to lo), and the source must not be one of ours.
 * Everything else is only counted. Traffic is never dropped or modified.
 *
 * Headers are read with bpf_skb_load_bytes / bpf_xdp_load_bytes rather than
 * direct packet access: they work on non-linear packets too (no pull), and the
 * offsets they take are plain numbers, so the verifier walks the extension
 * header loop once per iteration instead of tracking packet ranges.
 *
 * Built against the uapi headers (linux-libc-dev) rather than a generated
 * vmlinux.h: packet parsing needs only uapi structs, there is no CO-RE, so the
 * object builds without /sys/kernel/btf/vmlinux and loads on kernels without BTF. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "knock.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* IPv6 extension headers walked (verifier-bounded loop). Linux walks any
 * number; a longer chain is passed up for the decoder, which walks it all. */
#define KW_MAX_EXT_HEADERS 64
/* A transport header must start here or earlier to be captured whole (TCP: 20 bytes). */
#define KW_MAX_L4_OFF (KW_CAPTURE_MAX - 20)

/* Protocols to deliver, bit 0 TCP, bit 1 UDP: set by the loader before load
 * (--protocol) from captureProtocols() in src/capture/filter.ts, the same
 * function that writes the pcap filter's protocol terms. */
const volatile __u32 kw_protocols = 3;

/* Linux packet types (skb->pkt_type). */
#define KW_PACKET_BROADCAST 1
#define KW_PACKET_MULTICAST 2
#define KW_PACKET_OTHERHOST 3

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KW_CLASSES * KW_WATCH_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KW_ACTIVE_DEFAULT); /* the loader may resize before load */
	__type(key, struct kw_source);
	__type(value, __u8);
} active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KW_LOCAL_MAX);
	__type(key, struct kw_source);
	__type(value, __u8);
} local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KW_MACS_MAX);
	__type(key, __u32);
	__type(value, struct kw_mac);
} macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KW_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* What parse() says of a packet. */
enum kw_verdict {
	KW_NOT = 0,    /* not a knock by the rule: hidden, no state change */
	KW_KNOCK = 1,  /* a knock by the rule */
	KW_UNSURE = 2, /* could not decide: sent up whole, no state change */
};

struct kw_packet {
	struct kw_source src, dst;
	__u32 port_key;  /* (udp << 16) | destination port */
	__u32 need;      /* bytes of the frame the decoder needs: through the transport header */
	__u32 wire_len;
	__u32 vlan;      /* tc: the kernel moved a VLAN tag into metadata */
	__u32 pkt_type;  /* tc: skb->pkt_type; XDP: 0, and the MAC's group bit is checked instead */
	__u32 ifindex;   /* XDP: the receiving interface, for its MAC in `macs` */
};

/* XDP: a unicast frame for another MAC than the interface's own (Linux marks
 * it PACKET_OTHERHOST and drops it). An interface whose MAC the loader has not
 * filled in yet cannot be judged: its frames pass (never hide a knock). */
static __always_inline int xdp_other_host(const __u8 *dst, __u32 ifindex)
{
	if (dst[0] & 1)
		return 0;
	struct kw_mac *m = bpf_map_lookup_elem(&macs, &ifindex);
	if (!m)
		return 0;
	return ((m->addr[0] ^ dst[0]) | (m->addr[1] ^ dst[1]) | (m->addr[2] ^ dst[2]) | (m->addr[3] ^ dst[3]) |
		(m->addr[4] ^ dst[4]) | (m->addr[5] ^ dst[5])) != 0;
}

/* Bytes [off, off + len) of the packet into `to`; < 0 when they are not all there. */
static __always_inline long load(void *ctx, int xdp, __u32 off, void *to, __u32 len)
{
	if (xdp)
		return bpf_xdp_load_bytes((struct xdp_md *)ctx, off, to, len);
	return bpf_skb_load_bytes((struct __sk_buff *)ctx, off, to, len);
}

static __always_inline __u16 be16(const __u8 *b)
{
	return ((__u16)b[0] << 8) | b[1];
}

static __always_inline int is_loopback(const struct kw_source *a)
{
	if (a->family == 4)
		return a->addr[0] == 127;
	for (int i = 0; i < 15; i++)
		if (a->addr[i])
			return 0;
	return a->addr[15] == 1;
}

/* TCP or UDP header at `off`, the IP packet ending at `ip_end` (decode.ts transport()). */
static __always_inline int transport(void *ctx, int xdp, struct kw_packet *pk, __u8 l4, __u32 off, __u32 ip_end, int more_fragments,
				     int link_cast)
{
	__u8 h[20];

	if (!(kw_protocols & (l4 == IPPROTO_TCP ? 1 : 2)))
		return KW_NOT;
	if (off > KW_MAX_L4_OFF)
		return KW_UNSURE;
	if (l4 == IPPROTO_TCP) {
		if (off + 20 > ip_end || load(ctx, xdp, off, h, 20) < 0)
			return KW_NOT; /* tcp-truncated */
		__u32 hl = (h[12] >> 4) * 4;
		if (hl < 20 || off + hl > ip_end)
			return KW_NOT; /* tcp-data-offset */
		if ((h[13] & 0x12) != 0x02)
			return KW_NOT; /* SYN set, ACK clear */
		if (link_cast)
			return KW_NOT; /* Linux TCP takes only frames to its own MAC */
		pk->port_key = be16(h + 2);
		pk->need = off + 20;
		return KW_KNOCK;
	}
	if (off + 8 > ip_end || load(ctx, xdp, off, h, 8) < 0)
		return KW_NOT; /* udp-truncated */
	__u32 ulen = be16(h + 4);
	if (ulen < 8 || (off + ulen > ip_end && !more_fragments))
		return KW_NOT; /* udp-length */
	pk->port_key = (1u << 16) | be16(h + 2);
	pk->need = off + 8;
	return KW_KNOCK;
}

static __always_inline int ipv4(void *ctx, int xdp, struct kw_packet *pk, __u32 off, int link_cast)
{
	__u8 h[60];

	if (load(ctx, xdp, off, h, 20) < 0)
		return KW_NOT; /* ipv4-truncated */
	if ((h[0] >> 4) != 4)
		return KW_NOT;
	__u32 hl = (h[0] & 0x0f) * 4;
	if (hl < 20)
		return KW_NOT; /* ipv4-ihl */
	__u32 total = be16(h + 2);
	if (total < hl)
		return KW_NOT; /* ipv4-total-length */
	__u32 ip_end = off + total;
	if (ip_end > pk->wire_len)
		return KW_NOT; /* ipv4-truncated: Linux drops it */
	if (hl > 20 && load(ctx, xdp, off + 20, h + 20, hl - 20) < 0)
		return KW_NOT;
	/* Header checksum: Linux drops a packet whose header does not sum to 0xffff.
	 * The fixed 20 bytes always, options (rare) only when there are some. */
	__u32 sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += be16(h + i);
	if (hl > 20)
		for (int i = 20; i < 60; i += 2)
			if (i < hl)
				sum += be16(h + i);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return KW_NOT; /* ipv4-checksum */
	__u16 frag = be16(h + 6);
	if (frag & 0x1fff)
		return KW_NOT; /* a later fragment carries no transport header */
	__u8 l4 = h[9];
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
		return KW_NOT;
	pk->src.family = 4;
	__builtin_memcpy(pk->src.addr, h + 12, 4);
	pk->dst.family = 4;
	__builtin_memcpy(pk->dst.addr, h + 16, 4);
	return transport(ctx, xdp, pk, l4, off + hl, ip_end, (frag & 0x2000) != 0, link_cast);
}

static __always_inline int ipv6(void *ctx, int xdp, struct kw_packet *pk, __u32 off, int link_cast)
{
	__u8 h[40];

	if (load(ctx, xdp, off, h, 40) < 0)
		return KW_NOT; /* ipv6-truncated */
	if ((h[0] >> 4) != 6)
		return KW_NOT;
	__u32 ip_end = off + 40 + be16(h + 4);
	if (ip_end > pk->wire_len)
		return KW_NOT; /* ipv6-truncated */
	pk->src.family = 6;
	__builtin_memcpy(pk->src.addr, h + 8, 16);
	pk->dst.family = 6;
	__builtin_memcpy(pk->dst.addr, h + 24, 16);
	__u8 l4 = h[6];
	int more_fragments = 0;
	off += 40;
	for (int i = 0; i < KW_MAX_EXT_HEADERS; i++) {
		__u8 e[4];
		if (l4 == IPPROTO_TCP || l4 == IPPROTO_UDP)
			return transport(ctx, xdp, pk, l4, off, ip_end, more_fragments, link_cast);
		if (l4 == IPPROTO_HOPOPTS && i != 0)
			return KW_NOT; /* hop-by-hop only first */
		if (l4 == IPPROTO_ROUTING) {
			if (off + 4 > ip_end || load(ctx, xdp, off, e, 4) < 0)
				return KW_NOT;
			if (e[3])
				return KW_NOT; /* segments left: bound for another hop */
			l4 = e[0];
			off += ((__u32)e[1] + 1) * 8;
		} else if (l4 == IPPROTO_HOPOPTS || l4 == IPPROTO_DSTOPTS) {
			if (off + 2 > ip_end || load(ctx, xdp, off, e, 2) < 0)
				return KW_NOT;
			l4 = e[0];
			off += ((__u32)e[1] + 1) * 8;
		} else if (l4 == IPPROTO_FRAGMENT) {
			if (off + 8 > ip_end || load(ctx, xdp, off, e, 4) < 0)
				return KW_NOT;
			if (be16(e + 2) & 0xfff8)
				return KW_NOT; /* not the first fragment */
			more_fragments = e[3] & 1;
			l4 = e[0];
			off += 8;
		} else {
			return KW_NOT; /* AH (IPsec, never TCP/UDP without an SA), ESP, no next header, others */
		}
		if (off > ip_end)
			return KW_NOT; /* ipv6-ext-truncated */
	}
	if (l4 == IPPROTO_TCP || l4 == IPPROTO_UDP)
		return transport(ctx, xdp, pk, l4, off, ip_end, more_fragments, link_cast);
	return KW_UNSURE; /* longer chain than the loop bound: the decoder walks it */
}

/* The rule of decode.ts for one frame (link type Ethernet or raw IP). */
static __always_inline int parse(void *ctx, int xdp, int has_l2, struct kw_packet *pk)
{
	__u8 b[14];
	int link_cast = 0;
	__u32 off = 0;
	__u16 proto;

	if (has_l2) {
		if (load(ctx, xdp, 0, b, 14) < 0)
			return KW_NOT;
		/* A tagged frame belongs to the VLAN's interface (tc: the kernel
		 * already moved the outer tag into metadata). */
		if (pk->vlan)
			return KW_NOT;
		if (pk->pkt_type == KW_PACKET_OTHERHOST)
			return KW_NOT;
		if (xdp && xdp_other_host(b, pk->ifindex))
			return KW_NOT;
		link_cast = xdp ? (b[0] & 1) : (pk->pkt_type == KW_PACKET_BROADCAST || pk->pkt_type == KW_PACKET_MULTICAST);
		proto = be16(b + 12);
		off = 14;
	} else {
		if (load(ctx, xdp, 0, b, 1) < 0)
			return KW_NOT;
		proto = (b[0] >> 4) == 4 ? ETH_P_IP : (b[0] >> 4) == 6 ? ETH_P_IPV6 : 0;
	}
	if (proto == ETH_P_IP)
		return ipv4(ctx, xdp, pk, off, link_cast);
	if (proto == ETH_P_IPV6)
		return ipv6(ctx, xdp, pk, off, link_cast);
	return KW_NOT; /* VLAN tags in the bytes, ARP, ... */
}

static __always_inline int in_class(__u32 cls, __u32 port_key)
{
	__u32 word = cls * KW_WATCH_WORDS + (port_key >> 6);
	__u64 *bits = bpf_map_lookup_elem(&watched, &word);
	return bits && (*bits >> (port_key & 63)) & 1;
}

/* Decides whether the packet goes to user space: 0 no, else the bytes to send. */
static __always_inline __u32 wanted(void *ctx, int xdp, int has_l2, struct kw_packet *pk)
{
	__u8 one = 1;

	count(KW_SEEN);
	int verdict = parse(ctx, xdp, has_l2, pk);
	if (verdict == KW_NOT)
		return 0;
	/* Addresses were parsed before any KNOCK or UNSURE verdict. Not for this
	 * host: neither a knock nor a wrong port of a knocker. */
	if (is_loopback(&pk->dst) || is_loopback(&pk->src) || !bpf_map_lookup_elem(&local, &pk->dst))
		return 0;
	if (verdict == KW_UNSURE)
		return bpf_map_lookup_elem(&local, &pk->src) ? 0 : (pk->wire_len < KW_CAPTURE_MAX ? pk->wire_len : KW_CAPTURE_MAX);
	count(KW_CANDIDATES);
	__u32 n = pk->need > KW_SNAPLEN ? pk->need : KW_SNAPLEN;
	n = n < pk->wire_len ? n : pk->wire_len;
	int step = in_class(KW_CLASS_STEP, pk->port_key);
	/* Most flood packets end here: not a step, from a source that never knocked. */
	if (!step && !bpf_map_lookup_elem(&active, &pk->src))
		return 0;
	/* Never from one of our own addresses (looked up only now: it is a
	 * second hash lookup, and the flood above needs none). */
	if (bpf_map_lookup_elem(&local, &pk->src))
		return 0;
	if (step) {
		/* Only a first step: a flood to later steps cannot push real
		 * knockers out of the LRU map. */
		if (in_class(KW_CLASS_FIRST, pk->port_key) && !bpf_map_lookup_elem(&active, &pk->src))
			bpf_map_update_elem(&active, &pk->src, &one, BPF_ANY);
		return n;
	}
	/* The lockless lookup above came first: most packets come from sources
	 * that never knocked, and a delete takes the bucket lock. */
	if (in_class(KW_CLASS_OPEN, pk->port_key))
		return n;
	/* Deleting is the test: only one CPU can succeed, so the packet that
	 * resets a source is delivered exactly once even when several arrive at
	 * the same time. */
	return bpf_map_delete_elem(&active, &pk->src) == 0 ? n : 0;
}

/* n in [1, max] as the verifier can see it, computed as ((n - 1) & mask) + 1
 * (n itself when n <= max); a range check here gets reordered by clang onto a
 * register other than the one passed to the helper. */
_Static_assert((KW_SNAPLEN & (KW_SNAPLEN - 1)) == 0, "KW_SNAPLEN must be a power of two");
_Static_assert((KW_CAPTURE_MAX & (KW_CAPTURE_MAX - 1)) == 0, "KW_CAPTURE_MAX must be a power of two");
static __always_inline __u32 bounded(__u32 n, __u32 max)
{
	barrier_var(n);
	return ((n - 1) & (max - 1)) + 1;
}

/* Sends the first n bytes (1..KW_CAPTURE_MAX) of the frame up, in the smaller
 * record size that holds them. */
static __always_inline void emit(void *ctx, int xdp, int has_l2, __u32 n, __u32 wire_len, __u32 ifindex)
{
	struct kw_event *ev;
	long copied;

	if (n <= KW_SNAPLEN) {
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + KW_SNAPLEN, 0);
		if (!ev) {
			count(KW_DROPS);
			return;
		}
		n = bounded(n, KW_SNAPLEN);
		copied = load(ctx, xdp, 0, ev->data, n);
	} else {
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + KW_CAPTURE_MAX, 0);
		if (!ev) {
			count(KW_DROPS);
			return;
		}
		n = bounded(n, KW_CAPTURE_MAX);
		copied = load(ctx, xdp, 0, ev->data, n);
	}
	if (copied < 0) {
		/* Cannot happen: n <= the wire length; never send half a record. */
		bpf_ringbuf_discard(ev, 0);
		count(KW_DROPS);
		return;
	}
	ev->ktime_ns = bpf_ktime_get_ns();
	ev->wire_len = wire_len;
	ev->ifindex = ifindex;
	ev->link = has_l2 ? KW_LINK_ETHERNET : KW_LINK_RAW;
	ev->reserved = 0;
	ev->cap_len = n;
	bpf_ringbuf_submit(ev, 0);
	count(KW_EVENTS);
}

static __always_inline int tc_handle(struct __sk_buff *skb, int has_l2)
{
	struct kw_packet pk;

	__builtin_memset(&pk, 0, sizeof(pk));
	pk.wire_len = skb->len;
	pk.vlan = skb->vlan_present;
	pk.pkt_type = skb->pkt_type;
	__u32 n = wanted(skb, 0, has_l2, &pk);
	if (n)
		emit(skb, 0, has_l2, n, pk.wire_len, skb->ifindex);
	/* UNSPEC, not OK: let any later tc filter run too; alone it means "pass". */
	return TC_ACT_UNSPEC;
}

static __always_inline int xdp_handle(struct xdp_md *ctx, int has_l2)
{
	struct kw_packet pk;

	__builtin_memset(&pk, 0, sizeof(pk));
	pk.wire_len = bpf_xdp_get_buff_len(ctx);
	/* XDP sees tags in the bytes (parse() refuses them) and has no packet
	 * type: a frame for another host's MAC is told apart by the MAC itself. */
	pk.ifindex = ctx->ingress_ifindex;
	__u32 n = wanted(ctx, 1, has_l2, &pk);
	if (n)
		emit(ctx, 1, has_l2, n, pk.wire_len, ctx->ingress_ifindex);
	return XDP_PASS;
}

SEC("tc")
int knock_tc_eth(struct __sk_buff *skb)
{
	return tc_handle(skb, 1);
}

SEC("tc")
int knock_tc_raw(struct __sk_buff *skb)
{
	return tc_handle(skb, 0);
}

SEC("xdp")
int knock_xdp_eth(struct xdp_md *ctx)
{
	return xdp_handle(ctx, 1);
}

SEC("xdp")
int knock_xdp_raw(struct xdp_md *ctx)
{
	return xdp_handle(ctx, 0);
}
