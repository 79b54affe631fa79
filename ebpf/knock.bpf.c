// SPDX-License-Identifier: MIT OR GPL-2.0
/* knockwatch kernel-side filter: sees every packet arriving on an interface
 * (tc ingress or XDP) and hands user space only what detection needs:
 *   - TCP SYN (no ACK) / UDP to a knock step; a door's first step makes the
 *     source "active" (only a first step starts sequence state in user space);
 *   - the first TCP SYN / UDP of an active source to any other port, so detection
 *     can reset that source's sequence; the source then stops being active;
 *   - except a door's open port: every such packet of an active source is sent
 *     up and the source stays active. The door's own sequence ignores it (so
 *     later wrong ports must still be seen), another door's may reset on it.
 * Only packets addressed to one of this host's own addresses count (the loader
 * keeps the "local" map in step with them), as with the pcap backend's filter:
 * forwarded traffic and broadcasts are never knocks.
 * Everything else is only counted. Traffic is never dropped or modified.
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

/* IPv6 extension headers walked before giving up (verifier-bounded loop). */
#define KW_MAX_EXT_HEADERS 6
/* Bytes tc pulls into the linear area when a driver left headers in fragments. */
#define KW_PULL_LEN 128

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
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KW_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct ext_header {
	__u8 nexthdr;
	__u8 len;
};

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* Parses [data, data_end) and fills the source and destination keys and the
 * (protocol, port) key. Returns 1 for a TCP SYN without ACK or a UDP datagram,
 * else 0. */
static __always_inline int parse(void *data, void *data_end, int has_l2, struct kw_source *src, struct kw_source *dst,
				 __u32 *port_key)
{
	__u64 off = 0;
	__u16 proto = 0;
	__u8 l4;

	if (has_l2) {
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return 0;
		proto = eth->h_proto;
		off = sizeof(*eth);
		/* At tc ingress the kernel already moved the outer tag into skb
		 * metadata; XDP sees it in the data. Walk up to two (QinQ). */
#pragma unroll
		for (int i = 0; i < 2; i++) {
			if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
				break;
			struct vlan_tag *tag = data + off;
			if ((void *)(tag + 1) > data_end)
				return 0;
			proto = tag->proto;
			off += sizeof(*tag);
		}
	} else {
		/* Raw IP link (tun, WireGuard): the version nibble says which. */
		__u8 *first = data;
		if ((void *)(first + 1) > data_end)
			return 0;
		if ((*first >> 4) == 4)
			proto = bpf_htons(ETH_P_IP);
		else if ((*first >> 4) == 6)
			proto = bpf_htons(ETH_P_IPV6);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;
		if ((void *)(ip + 1) > data_end)
			return 0;
		if (ip->version != 4 || ip->ihl < 5)
			return 0;
		/* A non-first fragment carries no transport header. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0;
		src->family = 4;
		__builtin_memcpy(src->addr, &ip->saddr, 4);
		dst->family = 4;
		__builtin_memcpy(dst->addr, &ip->daddr, 4);
		l4 = ip->protocol;
		off += ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		if (ip6->version != 6)
			return 0;
		src->family = 6;
		__builtin_memcpy(src->addr, &ip6->saddr, 16);
		dst->family = 6;
		__builtin_memcpy(dst->addr, &ip6->daddr, 16);
		l4 = ip6->nexthdr;
		off += sizeof(*ip6);
#pragma unroll
		for (int i = 0; i < KW_MAX_EXT_HEADERS; i++) {
			if (l4 != IPPROTO_HOPOPTS && l4 != IPPROTO_ROUTING && l4 != IPPROTO_DSTOPTS &&
			    l4 != IPPROTO_FRAGMENT && l4 != IPPROTO_AH)
				break;
			struct ext_header *ext = data + off;
			if ((void *)(ext + 1) > data_end)
				return 0;
			if (l4 == IPPROTO_FRAGMENT) {
				__be16 *frag = data + off + 2;
				if ((void *)(frag + 1) > data_end)
					return 0;
				if (*frag & bpf_htons(0xfff8)) /* not the first fragment */
					return 0;
				l4 = ext->nexthdr;
				off += 8;
			} else if (l4 == IPPROTO_AH) {
				l4 = ext->nexthdr;
				off += ((__u64)ext->len + 2) * 4;
			} else {
				l4 = ext->nexthdr;
				off += ((__u64)ext->len + 1) * 8;
			}
		}
	} else {
		return 0;
	}

	if (l4 == IPPROTO_TCP) {
		struct tcphdr *tcp = data + off;
		if ((void *)(tcp + 1) > data_end)
			return 0;
		if (!tcp->syn || tcp->ack)
			return 0;
		*port_key = bpf_ntohs(tcp->dest);
		return 1;
	}
	if (l4 == IPPROTO_UDP) {
		struct udphdr *udp = data + off;
		if ((void *)(udp + 1) > data_end)
			return 0;
		*port_key = (1u << 16) | bpf_ntohs(udp->dest);
		return 1;
	}
	return 0;
}

static __always_inline int in_class(__u32 cls, __u32 port_key)
{
	__u32 word = cls * KW_WATCH_WORDS + (port_key >> 6);
	__u64 *bits = bpf_map_lookup_elem(&watched, &word);
	return bits && (*bits >> (port_key & 63)) & 1;
}

/* Decides whether the packet goes to user space. Returns 1 to emit. */
static __always_inline int wanted(void *data, void *data_end, int has_l2)
{
	struct kw_source src, dst;
	__u32 port_key = 0;
	__u8 one = 1;

	__builtin_memset(&src, 0, sizeof(src));
	__builtin_memset(&dst, 0, sizeof(dst));
	count(KW_SEEN);
	if (!parse(data, data_end, has_l2, &src, &dst, &port_key))
		return 0;
	/* Not for this host: neither a knock nor a wrong port of a knocker. */
	if (!bpf_map_lookup_elem(&local, &dst))
		return 0;
	count(KW_CANDIDATES);
	if (in_class(KW_CLASS_STEP, port_key)) {
		/* Only a first step: a flood to later steps cannot push real
		 * knockers out of the LRU map. */
		if (in_class(KW_CLASS_FIRST, port_key) && !bpf_map_lookup_elem(&active, &src))
			bpf_map_update_elem(&active, &src, &one, BPF_ANY);
		return 1;
	}
	/* A lockless lookup first: most packets come from sources that never
	 * knocked, and a delete takes the bucket lock. */
	if (!bpf_map_lookup_elem(&active, &src))
		return 0;
	if (in_class(KW_CLASS_OPEN, port_key))
		return 1;
	/* Deleting is the test: only one CPU can succeed, so the packet that
	 * resets a source is delivered exactly once even when several arrive at
	 * the same time. */
	return bpf_map_delete_elem(&active, &src) == 0;
}

/* Bytes to copy: the frame up to KW_SNAPLEN, computed as ((n - 1) & mask) + 1
 * so the verifier sees [1, KW_SNAPLEN] structurally; a range check here gets
 * reordered by clang onto a register other than the one passed to the helper. */
_Static_assert((KW_SNAPLEN & (KW_SNAPLEN - 1)) == 0, "KW_SNAPLEN must be a power of two");
static __always_inline __u32 copy_len(__u32 wire_len)
{
	__u32 n = wire_len < KW_SNAPLEN ? wire_len : KW_SNAPLEN;
	barrier_var(n);
	return ((n - 1) & (KW_SNAPLEN - 1)) + 1;
}

static __always_inline struct kw_event *reserve(__u32 wire_len, __u32 cap_len, __u32 ifindex, int has_l2)
{
	struct kw_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count(KW_DROPS);
		return 0;
	}
	ev->ktime_ns = bpf_ktime_get_ns();
	ev->wire_len = wire_len;
	ev->ifindex = ifindex;
	ev->link = has_l2 ? KW_LINK_ETHERNET : KW_LINK_RAW;
	ev->reserved = 0;
	ev->cap_len = cap_len;
	return ev;
}

static __always_inline void commit(struct kw_event *ev, long copied)
{
	if (copied < 0) {
		/* Cannot happen for a packet that parsed; never send half a record. */
		bpf_ringbuf_discard(ev, 0);
		count(KW_DROPS);
		return;
	}
	bpf_ringbuf_submit(ev, 0);
	count(KW_EVENTS);
}

static __always_inline int tc_handle(struct __sk_buff *skb, int has_l2)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	/* Some drivers leave headers outside the linear area that direct access
	 * covers; pull them in only then. */
	if (data + KW_PULL_LEN > data_end && skb->len > data_end - data) {
		bpf_skb_pull_data(skb, skb->len < KW_PULL_LEN ? skb->len : KW_PULL_LEN);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	if (!wanted(data, data_end, has_l2))
		return TC_ACT_UNSPEC;

	__u32 n = copy_len(skb->len);
	struct kw_event *ev = reserve(skb->len, n, skb->ifindex, has_l2);
	if (!ev)
		return TC_ACT_UNSPEC;
	commit(ev, bpf_skb_load_bytes(skb, 0, ev->data, n));
	/* UNSPEC, not OK: let any later tc filter run too; alone it means "pass". */
	return TC_ACT_UNSPEC;
}

static __always_inline int xdp_handle(struct xdp_md *ctx, int has_l2)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (!wanted(data, data_end, has_l2))
		return XDP_PASS;

	__u32 wire_len = bpf_xdp_get_buff_len(ctx);
	__u32 n = copy_len(wire_len);
	struct kw_event *ev = reserve(wire_len, n, ctx->ingress_ifindex, has_l2);
	if (!ev)
		return XDP_PASS;
	commit(ev, bpf_xdp_load_bytes(ctx, 0, ev->data, n));
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
