// Spoofed-source SYN/UDP flood generator for bench/flood.mjs.
//
// Writes complete Ethernet frames on one interface through an AF_PACKET
// socket (sendmmsg batches), so the sending host's IP stack, routing and
// firewall never see them and any source address can be used. Sources are
// random addresses in one IPv4 prefix (default 198.18.0.0/15, the benchmark
// range of RFC 2544), destination ports random except the ones given with
// --avoid. Checksums are correct, so the receiver treats them as real traffic.
// Stops by itself after --seconds (checked every batch, with alarm() as a
// backstop should a send block), then prints one JSON line with what it sent.
// --threads N sends from N threads, each with its own socket and 1/N of the
// rate: on a veth pair the receiver's whole stack runs in the sender's
// context, so one thread is often CPU-bound well below the rate wanted.
//
// Run it only inside a network namespace made for the benchmark: it floods.
//
//   flood --ifname IF --dst-mac MAC --dst A.B.C.D --seconds S [--rate PPS]
//         [--threads N] [--src-net A.B.C.D/LEN] [--udp-percent P] [--avoid P,P,...] [--seed N]
//         [--dport P]   (every packet to port P instead of random ports: a flood at one knock port)
//         [--udp-payload-len N|MIN-MAX] [--udp-payload-prefix HEX]
//               (UDP payloads of random bytes, N or MIN..MAX long, starting with
//                the given bytes: junk datagrams for a spa port, e.g. 101 bytes
//                starting 01 pass the length and version checks and only fail
//                on the key hint; without these the payload is "floodbch")
//
// stdout: {"event":"start","realtime_ns":N} when sending begins, then
//         {"event":"done","sent":N,"tcp":N,"udp":N,"send_errors":N,"threads":N,"seconds":S,"pps":R,
//          "start_ns":N,"end_ns":N}
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_UDP_PAYLOAD 512
#define MAX_PREFIX 32
#define FRAME_MAX (14 + 20 + 8 + MAX_UDP_PAYLOAD)
#define ETH_LEN 14
#define IP_LEN 20
#define TCP_LEN 20
#define UDP_LEN 8
#define UDP_PAYLOAD 8
#define MAX_AVOID 64
#define MAX_SECONDS 600
#define MAX_THREADS 16

static volatile sig_atomic_t alarm_fired = 0;

static void on_alarm(int sig) {
  (void)sig;
  alarm_fired = 1;
}

static void die(const char *what) {
  fprintf(stderr, "flood: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr,
          "flood: %s\nusage: flood --ifname IF --dst-mac MAC --dst A.B.C.D --seconds S [--rate PPS]\n"
          "             [--threads N] [--src-net A.B.C.D/LEN] [--udp-percent P] [--avoid P,P,...] [--seed N] [--dport P]\n"
          "             [--udp-payload-len N|MIN-MAX] [--udp-payload-prefix HEX]\n",
          why);
  exit(2);
}

static uint64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// xorshift64*: fast, and good enough to spread addresses and ports. One per thread.
static __thread uint64_t rng_state;
static uint32_t rnd32(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

// One's-complement sum of 16-bit big-endian words, not yet folded.
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  return sum;
}

static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}

static int parse_mac(const char *s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) {
    if (v[i] > 255) return -1;
    mac[i] = (uint8_t)v[i];
  }
  return 0;
}

static long parse_long(const char *s, long min, long max, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < min || v > max) {
    fprintf(stderr, "flood: %s must be an integer %ld-%ld, got '%s'\n", what, min, max, s);
    exit(2);
  }
  return v;
}

struct config {
  const char *ifname;
  uint8_t dst_mac[6];
  uint32_t dst;     // host order
  uint32_t src_net; // host order
  uint32_t src_mask;
  long seconds;
  long rate; // packets/s, all threads together; 0 = as fast as the sockets take them
  long threads;
  long udp_percent;
  uint16_t avoid[MAX_AVOID];
  int n_avoid;
  long dport; // 0 = random ports (minus --avoid)
  uint64_t seed;
  long payload_min, payload_max; // 0: the fixed 8-byte "floodbch" payload
  uint8_t prefix[MAX_PREFIX];
  int n_prefix;
};

static struct config parse_args(int argc, char **argv) {
  struct config c = {.src_net = 0xC6120000u, .src_mask = 0xFFFE0000u, .udp_percent = 30, .threads = 1, .seed = 0x6b6e6f636bull};
  int have_mac = 0, have_dst = 0;
  c.seconds = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage("every option takes a value");
    const char *v = argv[++i];
    if (!strcmp(a, "--ifname")) {
      if (strlen(v) == 0 || strlen(v) >= IFNAMSIZ) usage("invalid --ifname");
      c.ifname = v;
    } else if (!strcmp(a, "--dst-mac")) {
      if (parse_mac(v, c.dst_mac)) usage("invalid --dst-mac (expected aa:bb:cc:dd:ee:ff)");
      have_mac = 1;
    } else if (!strcmp(a, "--dst")) {
      struct in_addr in;
      if (inet_pton(AF_INET, v, &in) != 1) usage("invalid --dst (expected an IPv4 address)");
      c.dst = ntohl(in.s_addr);
      have_dst = 1;
    } else if (!strcmp(a, "--src-net")) {
      char buf[32];
      const char *slash = strchr(v, '/');
      if (!slash || (size_t)(slash - v) >= sizeof buf) usage("invalid --src-net (expected A.B.C.D/LEN)");
      memcpy(buf, v, (size_t)(slash - v));
      buf[slash - v] = 0;
      struct in_addr in;
      if (inet_pton(AF_INET, buf, &in) != 1) usage("invalid --src-net address");
      long len = parse_long(slash + 1, 8, 30, "--src-net prefix length");
      c.src_mask = 0xFFFFFFFFu << (32 - len);
      c.src_net = ntohl(in.s_addr) & c.src_mask;
    } else if (!strcmp(a, "--seconds")) {
      c.seconds = parse_long(v, 1, MAX_SECONDS, "--seconds");
    } else if (!strcmp(a, "--rate")) {
      c.rate = parse_long(v, 0, 100000000, "--rate");
    } else if (!strcmp(a, "--threads")) {
      c.threads = parse_long(v, 1, MAX_THREADS, "--threads");
    } else if (!strcmp(a, "--udp-percent")) {
      c.udp_percent = parse_long(v, 0, 100, "--udp-percent");
    } else if (!strcmp(a, "--dport")) {
      c.dport = parse_long(v, 1, 65535, "--dport");
    } else if (!strcmp(a, "--seed")) {
      c.seed = (uint64_t)parse_long(v, 1, 0x7fffffffL, "--seed");
    } else if (!strcmp(a, "--udp-payload-len")) {
      const char *dash = strchr(v, '-');
      if (dash) {
        char buf[16];
        if ((size_t)(dash - v) >= sizeof buf) usage("invalid --udp-payload-len");
        memcpy(buf, v, (size_t)(dash - v));
        buf[dash - v] = 0;
        c.payload_min = parse_long(buf, 1, MAX_UDP_PAYLOAD, "--udp-payload-len minimum");
        c.payload_max = parse_long(dash + 1, c.payload_min, MAX_UDP_PAYLOAD, "--udp-payload-len maximum");
      } else {
        c.payload_min = c.payload_max = parse_long(v, 1, MAX_UDP_PAYLOAD, "--udp-payload-len");
      }
    } else if (!strcmp(a, "--udp-payload-prefix")) {
      size_t n = strlen(v);
      if (n == 0 || n % 2 || n / 2 > MAX_PREFIX) usage("invalid --udp-payload-prefix (1-32 bytes as hex)");
      for (size_t k = 0; k < n / 2; k++) {
        unsigned byte;
        if (sscanf(v + 2 * k, "%2x", &byte) != 1) usage("invalid --udp-payload-prefix (not hex)");
        c.prefix[k] = (uint8_t)byte;
      }
      c.n_prefix = (int)(n / 2);
    } else if (!strcmp(a, "--avoid")) {
      char *copy = strdup(v), *save = NULL;
      if (!copy) die("strdup");
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (c.n_avoid == MAX_AVOID) usage("too many --avoid ports");
        c.avoid[c.n_avoid++] = (uint16_t)parse_long(t, 1, 65535, "--avoid port");
      }
      free(copy);
    } else {
      fprintf(stderr, "flood: unknown option '%s'\n", a);
      usage("see the usage");
    }
  }
  if (!c.ifname || !have_mac || !have_dst || c.seconds < 0) usage("--ifname, --dst-mac, --dst and --seconds are required");
  if (c.n_prefix > 0 && (c.payload_max == 0 || c.n_prefix > c.payload_min)) usage("--udp-payload-prefix needs --udp-payload-len at least as long");
  return c;
}

static uint16_t random_port(const struct config *c) {
  for (;;) {
    uint16_t p = (uint16_t)(rnd32() & 0xffff);
    if (p == 0) continue;
    int bad = 0;
    for (int i = 0; i < c->n_avoid; i++) bad |= c->avoid[i] == p;
    if (!bad) return p;
  }
}

// Fills one frame; returns its length. is_udp tells which kind it made.
static size_t build_frame(uint8_t *f, const struct config *c, const uint8_t src_mac[6], int *is_udp) {
  uint32_t src = c->src_net | (rnd32() & ~c->src_mask);
  uint16_t sport = (uint16_t)(1024 + rnd32() % 64512);
  uint16_t dport = c->dport ? (uint16_t)c->dport : random_port(c);
  int udp = (long)(rnd32() % 100) < c->udp_percent;
  size_t payload = UDP_PAYLOAD;
  if (udp && c->payload_max > 0) payload = (size_t)(c->payload_min + (long)(rnd32() % (uint32_t)(c->payload_max - c->payload_min + 1)));
  size_t l4_len = udp ? UDP_LEN + payload : TCP_LEN;
  uint8_t *ip = f + ETH_LEN, *l4 = ip + IP_LEN;

  memcpy(f, c->dst_mac, 6);
  memcpy(f + 6, src_mac, 6);
  put16(f + 12, ETHERTYPE_IP);

  ip[0] = 0x45;
  ip[1] = 0;
  put16(ip + 2, (uint16_t)(IP_LEN + l4_len));
  put16(ip + 4, (uint16_t)rnd32()); // id
  put16(ip + 6, 0x4000);            // DF
  ip[8] = 64;
  ip[9] = udp ? IPPROTO_UDP : IPPROTO_TCP;
  put16(ip + 10, 0);
  put32(ip + 12, src);
  put32(ip + 16, c->dst);
  put16(ip + 10, fold(sum16(ip, IP_LEN, 0)));

  // Pseudo-header sum: addresses, protocol, L4 length.
  uint32_t pseudo = sum16(ip + 12, 8, 0) + ip[9] + (uint32_t)l4_len;
  put16(l4, sport);
  put16(l4 + 2, dport);
  if (udp) {
    put16(l4 + 4, (uint16_t)l4_len);
    put16(l4 + 6, 0);
    if (c->payload_max > 0) {
      for (size_t k = 0; k < payload; k += 4) {
        uint32_t r = rnd32();
        size_t left = payload - k < 4 ? payload - k : 4;
        memcpy(l4 + UDP_LEN + k, &r, left);
      }
      memcpy(l4 + UDP_LEN, c->prefix, (size_t)c->n_prefix);
    } else {
      memcpy(l4 + UDP_LEN, "floodbch", UDP_PAYLOAD);
    }
    uint16_t sum = fold(sum16(l4, l4_len, pseudo));
    put16(l4 + 6, sum == 0 ? 0xffff : sum);
  } else {
    put32(l4 + 4, rnd32()); // seq
    put32(l4 + 8, 0);       // ack
    l4[12] = 5 << 4;        // data offset: 20 bytes, no options
    l4[13] = 0x02;          // SYN
    put16(l4 + 14, 64240);  // window
    put16(l4 + 16, 0);
    put16(l4 + 18, 0);
    put16(l4 + 16, fold(sum16(l4, l4_len, pseudo)));
  }
  *is_udp = udp;
  return ETH_LEN + IP_LEN + l4_len;
}

static void sleep_until(uint64_t mono_ns) {
  struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000ull), .tv_nsec = (long)(mono_ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !alarm_fired) {
  }
}

struct worker {
  const struct config *c;
  int fd;
  int ifindex;
  uint8_t src_mac[6];
  uint64_t seed;
  long rate; // this thread's share; 0 = unpaced
  uint64_t start, end; // CLOCK_MONOTONIC ns, shared by all threads
  // Results.
  uint64_t sent, tcp, udp, errors, last;
  int failed_errno;
};

static void *worker_run(void *arg) {
  struct worker *w = arg;
  const struct config *c = w->c;
  rng_state = w->seed * 0x9E3779B97F4A7C15ull | 1;
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = w->ifindex, .sll_halen = 6};
  memcpy(to.sll_addr, c->dst_mac, 6);
  static __thread uint8_t frames[BATCH][FRAME_MAX];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  int kinds[BATCH];

  uint64_t now = now_ns(CLOCK_MONOTONIC);
  while (!alarm_fired && now < w->end) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = frames[i];
      iov[i].iov_len = build_frame(frames[i], c, w->src_mac, &kinds[i]);
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(w->fd, msgs, BATCH, 0);
    if (n < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        w->failed_errno = errno;
        break;
      }
      w->errors++;
      n = 0;
    }
    // Frames the call did not take are simply not sent: the next batch is new.
    for (int i = 0; i < n; i++) {
      if (kinds[i]) w->udp++;
      else w->tcp++;
    }
    w->sent += (uint64_t)n;
    now = now_ns(CLOCK_MONOTONIC);
    if (w->rate > 0) {
      // Paced: this thread's n-th packet is due at start + n / rate.
      uint64_t due = w->start + w->sent * 1000000000ull / (uint64_t)w->rate;
      if (due > now) {
        sleep_until(due < w->end ? due : w->end);
        now = now_ns(CLOCK_MONOTONIC);
      }
    }
  }
  w->last = now;
  return NULL;
}

static int open_socket(const char *ifname, int *ifindex, uint8_t mac[6]) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0); // protocol 0: send only, receive nothing
  if (fd < 0) die("socket(AF_PACKET) (needs root or CAP_NET_RAW)");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) die(ifname);
  *ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = 0, .sll_ifindex = *ifindex};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind");
  int one = 1;
  // Skip the qdisc layer when the kernel allows it (veth has none anyway).
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  int sndbuf = 4 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return fd;
}

int main(int argc, char **argv) {
  struct config c = parse_args(argc, argv);
  struct worker workers[MAX_THREADS];
  memset(workers, 0, sizeof workers);
  for (long t = 0; t < c.threads; t++) {
    struct worker *w = &workers[t];
    w->c = &c;
    w->fd = open_socket(c.ifname, &w->ifindex, w->src_mac);
    w->seed = c.seed + (uint64_t)t * 7919;
    // Split the rate; the first threads take the remainder.
    w->rate = c.rate == 0 ? 0 : c.rate / c.threads + (t < c.rate % c.threads ? 1 : 0);
    if (c.rate > 0 && w->rate == 0) w->rate = 1;
  }

  // Backstop for the duration check in the loops: a send that blocks past the
  // end is interrupted (no SA_RESTART) and the loops see alarm_fired.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, NULL) < 0) die("sigaction");
  alarm((unsigned)c.seconds + 2);

  uint64_t start = now_ns(CLOCK_MONOTONIC), start_rt = now_ns(CLOCK_REALTIME);
  uint64_t end = start + (uint64_t)c.seconds * 1000000000ull;
  printf("{\"event\":\"start\",\"realtime_ns\":%llu}\n", (unsigned long long)start_rt);
  fflush(stdout);

  pthread_t tids[MAX_THREADS];
  for (long t = 0; t < c.threads; t++) {
    workers[t].start = start;
    workers[t].end = end;
    int err = pthread_create(&tids[t], NULL, worker_run, &workers[t]);
    if (err) {
      errno = err;
      die("pthread_create");
    }
  }
  uint64_t sent = 0, tcp = 0, udp = 0, errors = 0, last = start;
  int failed = 0;
  for (long t = 0; t < c.threads; t++) {
    pthread_join(tids[t], NULL);
    struct worker *w = &workers[t];
    sent += w->sent;
    tcp += w->tcp;
    udp += w->udp;
    errors += w->errors;
    if (w->last > last) last = w->last;
    if (w->failed_errno) {
      fprintf(stderr, "flood: sendmmsg: %s\n", strerror(w->failed_errno));
      failed = 1;
    }
    close(w->fd);
  }
  uint64_t stop_rt = now_ns(CLOCK_REALTIME);
  double seconds = (double)(last - start) / 1e9;
  printf("{\"event\":\"done\",\"sent\":%llu,\"tcp\":%llu,\"udp\":%llu,\"send_errors\":%llu,\"threads\":%ld,\"seconds\":%.3f,\"pps\":%.0f,"
         "\"start_ns\":%llu,\"end_ns\":%llu}\n",
         (unsigned long long)sent, (unsigned long long)tcp, (unsigned long long)udp, (unsigned long long)errors, c.threads, seconds,
         seconds > 0 ? (double)sent / seconds : 0.0, (unsigned long long)start_rt, (unsigned long long)stop_rt);
  fflush(stdout);
  return failed;
}
