// SPDX-License-Identifier: MIT
/* knockwatch-ebpf: loads knock.bpf.c, attaches it to interfaces, and streams
 * its events to stdout for the knockwatch daemon (src/capture/ebpf.ts).
 *
 *   knockwatch-ebpf --ifname IF [--ifname IF...] --port PORT/PROTO [...]
 *                   [--first PORT/PROTO...] [--open PORT/PROTO...]
 *                   [--protocol tcp|udp...] [--hook tc|xdp] [--netns NAME|PATH] [--max-active N]
 *                   [--stats-ms MS] [--verbose]
 *   knockwatch-ebpf --check [--hook tc|xdp]
 *
 * --port is a knock step, --first a door's first step (also a step), --open a
 * door's open port (see knock.bpf.c); each may be a range LOW-HIGH/PROTO.
 * Without any --first, every --port is treated as a first step. --protocol
 * limits the knocks delivered to these protocols (default both; the daemon
 * passes captureProtocols(), which is both whenever a door has a sequence,
 * since any SYN/UDP resets).
 *
 * --check loads the program and exits: 0 when this kernel and these
 * privileges can run it, 1 with the reason on stderr otherwise.
 * --ifname any: every interface that is up, except loopback, at start time.
 *
 * stdout carries little-endian records, each [u32 body length][u16 type][u16 0]
 * followed by the body:
 *   1 FRAME    u64 realtime ns, u32 wire length, u32 ifindex, u16 link type,
 *              u16 0, then the captured bytes
 *   2 COUNTERS u64 seen, candidates, events, drops (cumulative, all CPUs)
 *   3 READY    u32 count, then per interface u32 ifindex, u16 link type,
 *              u16 name length, name bytes
 * stderr carries one human line per message, prefixed "info: ", "warn: " or
 * "error: ".
 *
 * An interface that is deleted and created again (a VPN restarting) is
 * attached again at the next counters tick.
 *
 * The program counts only packets sent to one of this network namespace's own
 * addresses: the loader fills its "local" map at start and refreshes it on
 * every rtnetlink address notification and at every counters tick.
 *
 * It stops, detaching what it attached, on SIGINT, SIGTERM, SIGHUP, end of
 * stdin (the daemon died) or a closed stdout. tc filters outlive a killed
 * process, so a start first replaces any filter left at our fixed
 * handle/priority; XDP links die with the process. */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "knock.h"
#include "knock.skel.h"

#ifndef ARPHRD_RAWIP
#define ARPHRD_RAWIP 519
#endif

/* Our tc filter's identity: "kw" in ASCII. Priority 1 so we see packets
 * before other filters that might end classification. */
#define KW_TC_HANDLE 0x6b77
#define KW_TC_PRIORITY 1
#define MAX_IFACES 64
#define MAX_PORTS 4096

enum { REC_FRAME = 1, REC_COUNTERS = 2, REC_READY = 3 };

struct iface {
	char name[IF_NAMESIZE];
	int ifindex;
	int link; /* KW_LINK_* */
	int attached;
	int gone; /* deleted, or attaching again failed */
	struct bpf_link *xdp;
};

static struct iface ifaces[MAX_IFACES];
static int n_ifaces;
static int verbose;
/* Set around probes whose failure is expected (no filter there yet). */
static int libbpf_quiet;
static volatile sig_atomic_t stop_signal;

static unsigned char outbuf[1 << 18];
static size_t outlen;
static int out_closed;
static long long mono_to_real_ns;

static void msg(const char *level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if ((level == LIBBPF_DEBUG || libbpf_quiet) && !verbose)
		return 0;
	/* libbpf lines (verifier log included) are detail for an error that follows. */
	fputs(level == LIBBPF_WARN ? "warn: " : "info: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static long long now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes the buffer out. stdout is non-blocking and waited on with ppoll, so a
 * stalled reader never keeps a signal from stopping us. Returns -1 once we
 * must stop (signal, stdout closed). */
static int flush_out(void)
{
	size_t done = 0;
	while (done < outlen) {
		if (stop_signal || out_closed)
			return -1;
		ssize_t n = write(STDOUT_FILENO, outbuf + done, outlen - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };
			sigset_t none;
			sigemptyset(&none);
			ppoll(&p, 1, NULL, &none);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		out_closed = 1; /* EPIPE: the daemon is gone */
		return -1;
	}
	outlen = 0;
	return 0;
}

static int put_header(unsigned int body_len, unsigned short type)
{
	if (outlen + 8 + body_len > sizeof(outbuf) && flush_out() < 0)
		return -1;
	unsigned int len_le = htole32(body_len);
	unsigned short type_le = htole16(type), zero = 0;
	memcpy(outbuf + outlen, &len_le, 4);
	memcpy(outbuf + outlen + 4, &type_le, 2);
	memcpy(outbuf + outlen + 6, &zero, 2);
	outlen += 8;
	return 0;
}

static void put_u64(unsigned long long v)
{
	v = htole64(v);
	memcpy(outbuf + outlen, &v, 8);
	outlen += 8;
}

static void put_u32(unsigned int v)
{
	v = htole32(v);
	memcpy(outbuf + outlen, &v, 4);
	outlen += 4;
}

static void put_u16(unsigned short v)
{
	v = htole16(v);
	memcpy(outbuf + outlen, &v, 2);
	outlen += 2;
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct kw_event *ev = data;
	(void)ctx;
	if (size < sizeof(*ev) || ev->cap_len > size - sizeof(*ev) || ev->cap_len > KW_CAPTURE_MAX)
		return 0; /* cannot happen: the program fills cap_len within its record */
	if (put_header(20 + ev->cap_len, REC_FRAME) < 0)
		return -EINTR; /* stops ring_buffer__consume */
	put_u64((unsigned long long)((long long)ev->ktime_ns + mono_to_real_ns));
	put_u32(ev->wire_len);
	put_u32(ev->ifindex);
	put_u16(ev->link);
	put_u16(0);
	memcpy(outbuf + outlen, ev->data, ev->cap_len);
	outlen += ev->cap_len;
	return 0;
}

static int put_counters(struct knock_bpf *skel)
{
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long total[KW_COUNTERS] = { 0 };
	if (ncpu <= 0)
		return 0;
	unsigned long long *per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu));
	if (!per_cpu)
		return 0;
	for (unsigned int slot = 0; slot < KW_COUNTERS; slot++) {
		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &slot, per_cpu) == 0)
			for (int c = 0; c < ncpu; c++)
				total[slot] += per_cpu[c];
	}
	free(per_cpu);
	if (put_header(8 * KW_COUNTERS, REC_COUNTERS) < 0)
		return -1;
	for (int i = 0; i < KW_COUNTERS; i++)
		put_u64(total[i]);
	return 0;
}

static int put_ready(void)
{
	unsigned int body = 4;
	for (int i = 0; i < n_ifaces; i++)
		body += 8 + (unsigned int)strlen(ifaces[i].name);
	if (put_header(body, REC_READY) < 0)
		return -1;
	put_u32((unsigned int)n_ifaces);
	for (int i = 0; i < n_ifaces; i++) {
		unsigned short len = (unsigned short)strlen(ifaces[i].name);
		put_u32((unsigned int)ifaces[i].ifindex);
		put_u16((unsigned short)ifaces[i].link);
		put_u16(len);
		memcpy(outbuf + outlen, ifaces[i].name, len);
		outlen += len;
	}
	return flush_out();
}

/* Link type of an interface, from its ARPHRD type; 0 when unsupported. */
static int link_of(int sock, const char *name, int *arphrd)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IF_NAMESIZE - 1);
	if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
		return -1;
	*arphrd = ifr.ifr_hwaddr.sa_family;
	switch (ifr.ifr_hwaddr.sa_family) {
	case ARPHRD_ETHER:
		return KW_LINK_ETHERNET;
	case ARPHRD_NONE: /* tun, WireGuard */
	case ARPHRD_RAWIP:
		return KW_LINK_RAW;
	default:
		return 0;
	}
}

static int add_iface(int sock, const char *name, int from_any)
{
	int arphrd = 0;
	if (n_ifaces == MAX_IFACES) {
		msg("error", "too many interfaces (at most %d)", MAX_IFACES);
		return -1;
	}
	for (int i = 0; i < n_ifaces; i++)
		if (strcmp(ifaces[i].name, name) == 0)
			return 0;
	struct iface *f = &ifaces[n_ifaces];
	if (strlen(name) >= IF_NAMESIZE || (f->ifindex = (int)if_nametoindex(name)) == 0) {
		msg("error", "interface '%s' does not exist in this network namespace", name);
		return -1;
	}
	f->link = link_of(sock, name, &arphrd);
	if (f->link <= 0) {
		if (from_any) {
			msg("warn", "skipping interface '%s': link type %d is not Ethernet or raw IP", name, arphrd);
			return 0;
		}
		msg("error", "interface '%s' has link type %d: only Ethernet and raw IP (tun, WireGuard) are supported", name, arphrd);
		return -1;
	}
	strcpy(f->name, name);
	n_ifaces++;
	return 0;
}

/* `any`: every interface that is up, except loopback, at start time. Uses
 * if_nameindex + ioctl rather than /sys/class/net, which shows the host's
 * interfaces when we run under nsenter --net. */
static int add_any(int sock)
{
	struct if_nameindex *all = if_nameindex();
	int rc = 0;
	if (!all) {
		msg("error", "cannot list interfaces: %s", strerror(errno));
		return -1;
	}
	for (struct if_nameindex *i = all; i->if_index != 0 && rc == 0; i++) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		strncpy(ifr.ifr_name, i->if_name, IF_NAMESIZE - 1);
		if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
			continue;
		if (!(ifr.ifr_flags & IFF_UP) || (ifr.ifr_flags & IFF_LOOPBACK))
			continue;
		rc = add_iface(sock, i->if_name, 1);
	}
	if_freenameindex(all);
	if (rc == 0 && n_ifaces == 0) {
		msg("error", "--ifname any: no interface is up besides loopback");
		return -1;
	}
	return rc;
}

/* Makes the program's "local" map hold exactly this namespace's addresses
 * (all interfaces: Linux accepts a packet for any of them on any interface).
 * Returns 0, or -1 when the addresses could not be read (the map is kept). */
static int sync_local(int map_fd)
{
	static struct kw_source want[KW_LOCAL_MAX], stale[KW_LOCAL_MAX];
	static int known = -1;
	struct ifaddrs *list;
	int n = 0, n_stale = 0, over = 0, added = 0;
	unsigned char one = 1;

	if (getifaddrs(&list) < 0) {
		msg("warn", "cannot list this host's addresses: %s", strerror(errno));
		return -1;
	}
	for (struct ifaddrs *a = list; a; a = a->ifa_next) {
		struct kw_source k;
		memset(&k, 0, sizeof(k));
		if (!a->ifa_addr)
			continue;
		if (a->ifa_addr->sa_family == AF_INET) {
			k.family = 4;
			memcpy(k.addr, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
		} else if (a->ifa_addr->sa_family == AF_INET6) {
			k.family = 6;
			memcpy(k.addr, &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		if (n == KW_LOCAL_MAX) {
			over = 1;
			continue;
		}
		unsigned char old;
		if (bpf_map_lookup_elem(map_fd, &k, &old) < 0) {
			if (bpf_map_update_elem(map_fd, &k, &one, BPF_ANY) < 0) {
				msg("warn", "cannot add a local address to the program's map: %s", strerror(errno));
				continue;
			}
			added++;
		}
		want[n++] = k;
	}
	freeifaddrs(list);
	if (over)
		msg("warn", "more than %d local addresses: knocks to the others are not seen", KW_LOCAL_MAX);

	/* Collect first, delete after: deleting while walking the keys restarts the walk. */
	struct kw_source key, next;
	void *prev = NULL;
	while (n_stale < KW_LOCAL_MAX && bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		int found = 0;
		for (int i = 0; i < n && !found; i++)
			found = memcmp(&want[i], &next, sizeof(next)) == 0;
		if (!found)
			stale[n_stale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < n_stale; i++)
		bpf_map_delete_elem(map_fd, &stale[i]);
	if (known < 0 || added || n_stale)
		msg("info", "knocks are counted when sent to one of %d local address(es)", n);
	known = n;
	return 0;
}

/* A socket that becomes readable when an address is added or removed; -1 if
 * none could be opened (the counters tick still refreshes the map). */
static int open_addr_events(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		msg("warn", "cannot follow address changes (rtnetlink: %s); refreshing at each counters tick", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Reads all pending notifications; their content does not matter, a re-read
 * of the addresses follows. */
static void drain(int fd)
{
	char buf[8192];
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		break; /* EAGAIN: drained; ENOBUFS (overflow): the re-read covers it */
	}
}

/* PORT/proto or LOW-HIGH/proto (a range, LOW <= HIGH: a rotating door's
 * ports, tens of thousands, in one argument): the first and last port keys. */
static int parse_port(const char *arg, unsigned int *key, unsigned int *last)
{
	char *end;
	errno = 0;
	long port = strtol(arg, &end, 10);
	if (errno || end == arg || port < 1 || port > 65535)
		return -1;
	long high = port;
	if (*end == '-') {
		const char *from = end + 1;
		errno = 0;
		high = strtol(from, &end, 10);
		if (errno || end == from || high < port || high > 65535)
			return -1;
	}
	unsigned int proto;
	if (strcmp(end, "/tcp") == 0)
		proto = 0;
	else if (strcmp(end, "/udp") == 0)
		proto = 1u << 16;
	else
		return -1;
	*key = proto | (unsigned int)port;
	*last = proto | (unsigned int)high;
	return 0;
}

static int enter_netns(const char *arg)
{
	char path[PATH_MAX];
	if (strchr(arg, '/'))
		snprintf(path, sizeof(path), "%s", arg);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", arg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		msg("error", "cannot enter network namespace %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void explain_load_error(int err)
{
	if (err == -EPERM)
		msg("error", "permission denied loading the eBPF program: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON");
	else
		msg("error", "the kernel rejected the eBPF program (%s); it needs Linux >= 5.8 (ring buffer) with CONFIG_BPF_SYSCALL%s",
		    strerror(-err), verbose ? "" : "; rerun with --verbose for the verifier log");
}

static unsigned int prog_id(const struct bpf_program *prog)
{
	struct bpf_prog_info info;
	unsigned int len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) < 0)
		return 0;
	return info.id;
}

/* Program id of the filter at our handle/priority on f's ingress, or 0. */
static unsigned int our_filter(struct iface *f)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, query, .handle = KW_TC_HANDLE, .priority = KW_TC_PRIORITY);
	libbpf_quiet = 1; /* "no such filter" is the usual answer */
	int err = bpf_tc_query(&hook, &query);
	libbpf_quiet = 0;
	return err == 0 ? query.prog_id : 0;
}

/* XDP mode: a tc filter left by a killed tc-mode run would keep running. */
static void remove_stale_tc(struct iface *f)
{
	unsigned int stale = our_filter(f);
	if (!stale)
		return;
	msg("info", "removing a knockwatch tc filter left on %s by an earlier run (prog id %u)", f->name, stale);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KW_TC_HANDLE, .priority = KW_TC_PRIORITY);
	int err = bpf_tc_detach(&hook, &opts);
	if (err)
		msg("warn", "cannot remove the stale tc filter from %s: %s", f->name, strerror(-err));
}

static int attach_tc(struct iface *f, int prog_fd, unsigned int our_prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_INGRESS);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		if (err == -EPERM)
			msg("error", "permission denied creating the clsact qdisc on %s: needs root or CAP_NET_ADMIN", f->name);
		else
			msg("error", "cannot create the clsact qdisc on %s (%s): the kernel needs CONFIG_NET_SCH_INGRESS and CONFIG_NET_CLS_BPF",
			    f->name, strerror(-err));
		return -1;
	}
	unsigned int stale = our_filter(f);
	if (stale && stale != our_prog_id)
		msg("info", "replacing a knockwatch tc filter left on %s by an earlier run (prog id %u)", f->name, stale);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KW_TC_HANDLE, .priority = KW_TC_PRIORITY, .prog_fd = prog_fd,
		    .flags = BPF_TC_F_REPLACE);
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		msg("error", "cannot attach the tc ingress filter on %s: %s", f->name, strerror(-err));
		return -1;
	}
	f->attached = 1;
	return 0;
}

static void detach_tc(struct iface *f, unsigned int our_prog_id)
{
	/* A newer run may have replaced our filter: leave its filter alone. The
	 * clsact qdisc itself stays; other tools may share it. */
	unsigned int there = our_filter(f);
	if (!there || there != our_prog_id)
		return;
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = KW_TC_HANDLE, .priority = KW_TC_PRIORITY);
	int err = bpf_tc_detach(&hook, &opts);
	if (err)
		msg("warn", "cannot detach the tc filter from %s: %s", f->name, strerror(-err));
}

static struct bpf_program *program_for(struct knock_bpf *skel, const struct iface *f, int xdp)
{
	if (xdp)
		return f->link == KW_LINK_ETHERNET ? skel->progs.knock_xdp_eth : skel->progs.knock_xdp_raw;
	return f->link == KW_LINK_ETHERNET ? skel->progs.knock_tc_eth : skel->progs.knock_tc_raw;
}

/* XDP only: makes the program's "macs" map hold each attached Ethernet
 * interface's own MAC (tc reads skb->pkt_type instead). Run before attaching
 * and at every counters tick, so a MAC change or a re-created interface is
 * followed; entries of interfaces no longer listed are removed. An interface
 * whose MAC cannot be read is left out: its frames are then not judged by
 * MAC (passed up, never hidden). */
static void sync_macs(int map_fd)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		msg("warn", "cannot read interface MACs: %s", strerror(errno));
		return;
	}
	__u32 keep[MAX_IFACES];
	int n_keep = 0;
	for (int i = 0; i < n_ifaces; i++) {
		struct iface *f = &ifaces[i];
		if (f->gone || f->link != KW_LINK_ETHERNET)
			continue;
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, f->name, sizeof(ifr.ifr_name)); /* both IF_NAMESIZE, NUL-terminated */
		if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
			continue;
		if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER && ifr.ifr_hwaddr.sa_family != ARPHRD_LOOPBACK)
			continue;
		struct kw_mac mac;
		memset(&mac, 0, sizeof(mac));
		memcpy(mac.addr, ifr.ifr_hwaddr.sa_data, 6);
		__u32 key = (__u32)f->ifindex;
		if (bpf_map_update_elem(map_fd, &key, &mac, BPF_ANY) < 0) {
			msg("warn", "cannot set the MAC of %s in the program's map: %s", f->name, strerror(errno));
			continue;
		}
		keep[n_keep++] = key;
	}
	close(sock);
	__u32 stale[KW_MACS_MAX], key, next;
	int n_stale = 0;
	void *prev = NULL;
	while (n_stale < KW_MACS_MAX && bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		int found = 0;
		for (int i = 0; i < n_keep && !found; i++)
			found = keep[i] == next;
		if (!found)
			stale[n_stale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < n_stale; i++)
		bpf_map_delete_elem(map_fd, &stale[i]);
}

static int attach_one(struct knock_bpf *skel, struct iface *f, int xdp)
{
	struct bpf_program *prog = program_for(skel, f, xdp);
	if (!xdp)
		return attach_tc(f, bpf_program__fd(prog), prog_id(prog));
	remove_stale_tc(f);
	f->xdp = bpf_program__attach_xdp(prog, f->ifindex);
	if (!f->xdp) {
		msg("error", "cannot attach XDP on %s: %s (another XDP program attached?)", f->name, strerror(errno));
		return -1;
	}
	return 0;
}

/* Counters tick: attach again to interfaces that were deleted and created
 * anew (new ifindex, or our tc filter gone with the old device). A filter
 * of another program at our handle means a newer run took over: left alone. */
static void reattach(struct knock_bpf *skel, int xdp)
{
	for (int i = 0; i < n_ifaces; i++) {
		struct iface *f = &ifaces[i];
		int index = (int)if_nametoindex(f->name);
		if (index == 0) {
			if (!f->gone)
				msg("warn", "interface %s disappeared; it is attached again if it comes back", f->name);
			f->gone = 1;
			continue;
		}
		if (index == f->ifindex && !f->gone && (xdp || our_filter(f) != 0))
			continue;
		if (f->xdp) {
			bpf_link__destroy(f->xdp);
			f->xdp = NULL;
		}
		f->ifindex = index;
		f->attached = 0;
		if (attach_one(skel, f, xdp) == 0) {
			f->gone = 0;
			msg("info", "attached again to %s (ifindex %d)", f->name, index);
		} else {
			f->gone = 1; /* retried at the next tick */
		}
	}
}

static void usage(void)
{
	fputs("usage: knockwatch-ebpf --ifname IF [--ifname IF...] --port PORT/tcp|udp [...]\n"
	      "                       [--first PORT/tcp|udp...] [--open PORT/tcp|udp...] [--protocol tcp|udp...]\n"
	      "                       [--hook tc|xdp] [--netns NAME|PATH] [--max-active N]\n"
	      "                       [--stats-ms MS] [--verbose]\n"
	      "                       (each PORT may be a range LOW-HIGH)\n"
	      "       knockwatch-ebpf --check [--hook tc|xdp]\n",
	      stderr);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ifname", required_argument, 0, 'i' },   { "port", required_argument, 0, 'p' },
		{ "first", required_argument, 0, 'f' },    { "open", required_argument, 0, 'o' },
		{ "hook", required_argument, 0, 'k' },     { "netns", required_argument, 0, 'n' },
		{ "max-active", required_argument, 0, 'm' }, { "stats-ms", required_argument, 0, 's' },
		{ "verbose", no_argument, 0, 'v' },        { "check", no_argument, 0, 'c' },
		{ "protocol", required_argument, 0, 'P' },
		{ 0, 0, 0, 0 },
	};
	const char *names[MAX_IFACES];
	/* Port keys, each with its class in bits 17 and up; ports_last[i]: the
	 * range's last key (the same key for a single port). */
	unsigned int ports[MAX_PORTS], ports_last[MAX_PORTS];
	int n_names = 0, n_ports = 0, n_steps = 0, n_first = 0, xdp = 0, check = 0;
	unsigned int protocols = 0; /* bit 0 tcp, bit 1 udp; 0: both */
	long max_active = KW_ACTIVE_DEFAULT, stats_ms = 1000;
	const char *netns = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'i':
			if (n_names == MAX_IFACES) {
				msg("error", "too many --ifname (at most %d)", MAX_IFACES);
				return 2;
			}
			names[n_names++] = optarg;
			break;
		case 'p':
		case 'f':
		case 'o': {
			const char *opt = c == 'p' ? "port" : c == 'f' ? "first" : "open";
			unsigned int cls = c == 'p' ? KW_CLASS_STEP : c == 'f' ? KW_CLASS_FIRST : KW_CLASS_OPEN;
			if (n_ports == MAX_PORTS || parse_port(optarg, &ports[n_ports], &ports_last[n_ports]) < 0) {
				msg("error", "bad --%s '%s': expected PORT/tcp, PORT/udp or LOW-HIGH/tcp|udp with ports 1-65535", opt, optarg);
				return 2;
			}
			ports[n_ports++] |= cls << 17;
			n_steps += c != 'o';
			n_first += c == 'f';
			break;
		}
		case 'P':
			if (strcmp(optarg, "tcp") != 0 && strcmp(optarg, "udp") != 0) {
				msg("error", "bad --protocol '%s': expected tcp or udp", optarg);
				return 2;
			}
			protocols |= strcmp(optarg, "tcp") == 0 ? 1u : 2u;
			break;
		case 'k':
			if (strcmp(optarg, "tc") != 0 && strcmp(optarg, "xdp") != 0) {
				msg("error", "bad --hook '%s': expected tc or xdp", optarg);
				return 2;
			}
			xdp = strcmp(optarg, "xdp") == 0;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'm':
			max_active = strtol(optarg, &end, 10);
			if (*end || max_active < 1 || max_active > (1L << 24)) {
				msg("error", "bad --max-active '%s': expected 1-16777216", optarg);
				return 2;
			}
			break;
		case 's':
			stats_ms = strtol(optarg, &end, 10);
			if (*end || stats_ms < 10 || stats_ms > 3600000) {
				msg("error", "bad --stats-ms '%s': expected 10-3600000", optarg);
				return 2;
			}
			break;
		case 'v':
			verbose = 1;
			break;
		case 'c':
			check = 1;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc || (!check && (n_names == 0 || n_steps == 0))) {
		usage();
		return 2;
	}

	libbpf_set_print(libbpf_print);
	if (netns && enter_netns(netns) < 0)
		return 1;

	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		msg("error", "cannot open a socket to query interfaces: %s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < n_names; i++) {
		if ((strcmp(names[i], "any") == 0 ? add_any(sock) : add_iface(sock, names[i], 0)) < 0) {
			close(sock);
			return 1;
		}
	}
	close(sock);

	struct knock_bpf *skel = knock_bpf__open();
	if (!skel) {
		msg("error", "cannot open the embedded eBPF object: %s", strerror(errno));
		return 1;
	}
	int want_l2 = check, want_raw = check;
	for (int i = 0; i < n_ifaces; i++) {
		want_l2 |= ifaces[i].link == KW_LINK_ETHERNET;
		want_raw |= ifaces[i].link == KW_LINK_RAW;
	}
	/* Load only the programs this run attaches. */
	bpf_program__set_autoload(skel->progs.knock_tc_eth, !xdp && want_l2);
	bpf_program__set_autoload(skel->progs.knock_tc_raw, !xdp && want_raw);
	bpf_program__set_autoload(skel->progs.knock_xdp_eth, xdp && want_l2);
	bpf_program__set_autoload(skel->progs.knock_xdp_raw, xdp && want_raw);
	bpf_map__set_max_entries(skel->maps.active, (unsigned int)max_active);
	skel->rodata->kw_protocols = protocols ? protocols : 3u;

	int err = knock_bpf__load(skel);
	if (err) {
		explain_load_error(err);
		knock_bpf__destroy(skel);
		return 1;
	}
	if (check) {
		msg("info", "this kernel can run the %s program", xdp ? "xdp" : "tc");
		knock_bpf__destroy(skel);
		return 0;
	}

	/* Fill the port-class bitmaps. A first step is a step too. */
	static unsigned long long words[KW_CLASSES * KW_WATCH_WORDS];
	memset(words, 0, sizeof(words));
	for (int i = 0; i < n_ports; i++) {
		unsigned int cls = ports[i] >> 17;
		unsigned int classes = cls == KW_CLASS_OPEN ? 1u << KW_CLASS_OPEN
				       : cls == KW_CLASS_FIRST || n_first == 0 ? (1u << KW_CLASS_STEP) | (1u << KW_CLASS_FIRST)
									   : 1u << KW_CLASS_STEP;
		for (unsigned int key = ports[i] & 0x1ffff; key <= ports_last[i]; key++)
			for (unsigned int k = 0; k < KW_CLASSES; k++)
				if (classes & (1u << k))
					words[k * KW_WATCH_WORDS + (key >> 6)] |= 1ULL << (key & 63);
	}
	for (unsigned int w = 0; w < KW_CLASSES * KW_WATCH_WORDS; w++) {
		if (words[w] && bpf_map_update_elem(bpf_map__fd(skel->maps.watched), &w, &words[w], BPF_ANY) < 0) {
			msg("error", "cannot fill the watched-ports map: %s", strerror(errno));
			knock_bpf__destroy(skel);
			return 1;
		}
	}

	/* Addresses before attaching, so no knock to this host is missed at start. */
	int addr_fd = open_addr_events();
	if (sync_local(bpf_map__fd(skel->maps.local)) < 0) {
		msg("error", "cannot start without the list of this host's addresses");
		knock_bpf__destroy(skel);
		return 1;
	}
	/* MACs before attaching too (XDP), so no other host's frame counts at start. */
	if (xdp)
		sync_macs(bpf_map__fd(skel->maps.macs));

	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb) {
		msg("error", "cannot open the ring buffer: %s", strerror(errno));
		knock_bpf__destroy(skel);
		return 1;
	}

	/* Signals are blocked except inside ppoll, so none is lost between
	 * checking stop_signal and waiting. */
	sigset_t block, orig;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &orig);
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);

	int rc = 0;
	for (int i = 0; i < n_ifaces && rc == 0; i++)
		rc = attach_one(skel, &ifaces[i], xdp) < 0;
	mono_to_real_ns = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
	if (rc == 0 && put_ready() < 0)
		rc = 1;
	if (rc == 0)
		msg("info", "attached %s on %d interface(s), watching %d knock step(s) and %d open port(s)", xdp ? "xdp" : "tc ingress",
		    n_ifaces, n_steps, n_ports - n_steps);

	long long next_stats = now_ns(CLOCK_MONOTONIC) + stats_ms * 1000000LL;
	struct pollfd fds[3] = {
		{ .fd = ring_buffer__epoll_fd(rb), .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = addr_fd, .events = POLLIN }, /* ignored by poll when -1 */
	};
	while (rc == 0 && !stop_signal && !out_closed) {
		long long wait = next_stats - now_ns(CLOCK_MONOTONIC);
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 0 };
		if (wait > 0) {
			ts.tv_sec = wait / 1000000000LL;
			ts.tv_nsec = wait % 1000000000LL;
		}
		int n = ppoll(fds, 3, &ts, &orig);
		if (n < 0 && errno != EINTR) {
			msg("error", "poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		if (n > 0 && fds[1].revents) {
			char sink[256];
			ssize_t r = read(STDIN_FILENO, sink, sizeof(sink));
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
				break; /* the daemon closed our stdin or died */
		}
		/* NTP may step the wall clock: refresh the offset for each batch. */
		mono_to_real_ns = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
		if (n > 0 && fds[2].revents) {
			drain(addr_fd);
			sync_local(bpf_map__fd(skel->maps.local));
		}
		if (n > 0 && fds[0].revents)
			ring_buffer__consume(rb);
		if (now_ns(CLOCK_MONOTONIC) >= next_stats) {
			next_stats += stats_ms * 1000000LL;
			reattach(skel, xdp);
			if (xdp)
				sync_macs(bpf_map__fd(skel->maps.macs));
			sync_local(bpf_map__fd(skel->maps.local));
			put_counters(skel);
		}
		flush_out();
	}

	for (int i = 0; i < n_ifaces; i++) {
		struct iface *f = &ifaces[i];
		if (f->xdp) {
			bpf_link__destroy(f->xdp);
		} else if (f->attached && !f->gone) {
			detach_tc(f, prog_id(program_for(skel, f, 0)));
		}
	}
	/* Deliver what was already queued and the final counters, unless stdout is gone. */
	if (!out_closed) {
		stop_signal = 0;
		ring_buffer__consume(rb);
		put_counters(skel);
		flush_out();
	}
	ring_buffer__free(rb);
	if (addr_fd >= 0)
		close(addr_fd);
	knock_bpf__destroy(skel);
	return rc;
}
