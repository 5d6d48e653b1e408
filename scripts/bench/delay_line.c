// delay_line: a user-space layer-2 delay between two network interfaces, for
// scripts/bench_throughput.sh. This kernel has no netem qdisc, so added latency
// has to come from user space.
//
// For each enabled direction a thread reads every frame arriving on the input
// interface (AF_PACKET, ETH_P_ALL), stamps it with "now + delay", stores it in a
// byte ring and writes it out of the other interface once that time has come.
// PACKET_VNET_HDR keeps the virtio-net header in front of each frame, so GSO
// super-frames and CHECKSUM_PARTIAL frames from veth survive the trip unchanged.
// Frames are never parsed or rewritten: ARP, IPv6, UDP and plain TCP pass as is.
//
// Build:  gcc -O2 -Wall -pthread -o delay_line delay_line.c
// Usage:  delay_line -a IFA -b IFB [-A MS] [-B MS] [-r MIB]
//   -A MS   one-way delay for frames IFA -> IFB (fractions allowed; omitted: not handled)
//   -B MS   one-way delay for frames IFB -> IFA (omitted: not handled)
//   -r MIB  ring size per direction (default 64)
// A direction that is not handled must be forwarded by something else (the bench
// uses a tc mirred redirect), which is how the ACK-only delay mode keeps the
// data packets off this program.
// Signals: SIGUSR1 prints one JSON line of counters on stderr; SIGTERM/SIGINT
// print it and exit 0.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
  FRAME_MAX_BYTES = 65536 + 512, // virtio-net header + the largest GSO frame
  BATCH = 64,
  SLOT_ALIGN = 64,
  RX_ROUNDS_PER_WAKE = 16,
};

// One stored frame: header followed by len bytes. A header with len == 0 and
// skip != 0 pads the rest of the ring so that no frame is split at the end.
struct slot {
  uint64_t due_ns;
  uint32_t len;
  uint32_t skip;
};

struct lane {
  char label[40];
  int enabled;
  int rx_fd, tx_fd;
  uint64_t delay_ns;
  uint8_t *ring;
  uint64_t cap;        // bytes
  uint64_t head, tail; // ever-growing byte positions; head - tail = bytes in use
  uint8_t *rxbuf;      // BATCH * FRAME_MAX_BYTES
  // counters, written only by the lane's own thread
  volatile uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes, ring_full_drops, tx_errors, peak_bytes;
};

static struct lane lanes[2];

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static unsigned ifindex_or_die(const char *name) {
  unsigned idx = if_nametoindex(name);
  if (!idx) {
    fprintf(stderr, "delay_line: no interface named %s in this namespace\n", name);
    exit(1);
  }
  return idx;
}

// receive = 1: a socket that gets every frame arriving on the interface.
// receive = 0: a send-only socket (protocol 0 means the kernel queues nothing to it).
static int packet_socket(const char *ifname, int receive) {
  uint16_t proto = receive ? htons(ETH_P_ALL) : 0;
  int fd = socket(AF_PACKET, SOCK_RAW, proto);
  if (fd < 0) die("socket(AF_PACKET)");
  int on = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) < 0) die("PACKET_VNET_HDR");
  // Our own transmissions must not come back to us as input.
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on) < 0) die("PACKET_IGNORE_OUTGOING");
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &on, sizeof on); // optional
  int bytes = 64 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes);
  struct sockaddr_ll addr;
  memset(&addr, 0, sizeof addr);
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = proto;
  addr.sll_ifindex = (int)ifindex_or_die(ifname);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind(AF_PACKET)");
  if (receive) {
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = addr.sll_ifindex;
    mreq.mr_type = PACKET_MR_PROMISC;
    (void)setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq);
  }
  return fd;
}

static uint64_t slot_bytes(uint32_t len) {
  return (sizeof(struct slot) + len + SLOT_ALIGN - 1) & ~(uint64_t)(SLOT_ALIGN - 1);
}

// Room for a frame of len bytes at the head, or NULL when the ring is full.
static struct slot *ring_reserve(struct lane *l, uint32_t len) {
  uint64_t need = slot_bytes(len);
  uint64_t at = l->head % l->cap;
  uint64_t pad = at + need > l->cap ? l->cap - at : 0;
  if (l->cap - (l->head - l->tail) < pad + need) return NULL;
  if (pad) {
    struct slot *p = (struct slot *)(l->ring + at);
    p->len = 0;
    p->skip = 1;
    l->head += pad;
    at = 0;
  }
  struct slot *s = (struct slot *)(l->ring + at);
  s->len = len;
  s->skip = 0;
  l->head += need;
  return s;
}

// Oldest stored frame (padding skipped), or NULL when empty.
static struct slot *ring_oldest(struct lane *l) {
  while (l->tail != l->head) {
    uint64_t at = l->tail % l->cap;
    struct slot *s = (struct slot *)(l->ring + at);
    if (!s->skip) return s;
    l->tail += l->cap - at;
  }
  return NULL;
}

// Reads everything queued on the input socket; returns the number of frames.
static int take_input(struct lane *l) {
  struct mmsghdr msg[BATCH];
  struct iovec iov[BATCH];
  int total = 0;
  for (int round = 0; round < RX_ROUNDS_PER_WAKE; round++) {
    memset(msg, 0, sizeof msg);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = l->rxbuf + (size_t)i * FRAME_MAX_BYTES;
      iov[i].iov_len = FRAME_MAX_BYTES;
      msg[i].msg_hdr.msg_iov = &iov[i];
      msg[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(l->rx_fd, msg, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    uint64_t due = mono_ns() + l->delay_ns;
    for (int i = 0; i < n; i++) {
      uint32_t len = msg[i].msg_len;
      l->rx_frames++;
      l->rx_bytes += len;
      struct slot *s = ring_reserve(l, len);
      if (!s) {
        l->ring_full_drops++;
        continue;
      }
      s->due_ns = due;
      memcpy(s + 1, iov[i].iov_base, len);
    }
    uint64_t used = l->head - l->tail;
    if (used > l->peak_bytes) l->peak_bytes = used;
    total += n;
    if (n < BATCH) break;
  }
  return total;
}

// Sends every frame that is due. Returns the due time of the next stored frame,
// or 0 when the ring is empty.
static uint64_t release_due(struct lane *l) {
  struct mmsghdr msg[BATCH];
  struct iovec iov[BATCH];
  for (;;) {
    uint64_t now = mono_ns();
    int n = 0;
    struct slot *s;
    // Frames are sent straight from the ring. Advancing the tail before sendmmsg is safe: only this
    // thread writes the ring, and it does not read input again until the batch is out.
    memset(msg, 0, sizeof msg);
    while (n < BATCH && (s = ring_oldest(l)) != NULL && s->due_ns <= now) {
      iov[n].iov_base = s + 1;
      iov[n].iov_len = s->len;
      msg[n].msg_hdr.msg_iov = &iov[n];
      msg[n].msg_hdr.msg_iovlen = 1;
      l->tail += slot_bytes(s->len);
      n++;
    }
    int done = 0;
    while (done < n) {
      int sent = sendmmsg(l->tx_fd, msg + done, (unsigned)(n - done), 0);
      if (sent < 0) {
        if (errno == EINTR) continue;
        l->tx_errors++; // drop the frame that failed and carry on
        done++;
        continue;
      }
      for (int i = done; i < done + sent; i++) {
        l->tx_frames++;
        l->tx_bytes += iov[i].iov_len;
      }
      done += sent;
    }
    s = ring_oldest(l);
    if (!s) return 0;
    if (s->due_ns > mono_ns()) return s->due_ns;
  }
}

static void *lane_main(void *arg) {
  struct lane *l = arg;
  struct pollfd pfd = {.fd = l->rx_fd, .events = POLLIN};
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // wake-ups to the microsecond, not 50 us late
  for (;;) {
    int got = take_input(l);
    uint64_t next = release_due(l);
    if (got) continue;
    struct timespec ts, *timeout = NULL;
    if (next) {
      uint64_t now = mono_ns();
      uint64_t wait = next > now ? next - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
      timeout = &ts;
    }
    (void)ppoll(&pfd, 1, timeout, NULL);
  }
  return NULL;
}

static void print_counters(void) {
  fprintf(stderr, "{\"delay_line\":[");
  const char *sep = "";
  for (int i = 0; i < 2; i++) {
    struct lane *l = &lanes[i];
    if (!l->enabled) continue;
    struct tpacket_stats st;
    socklen_t sl = sizeof st;
    memset(&st, 0, sizeof st);
    (void)getsockopt(l->rx_fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl); // reading resets them
    fprintf(stderr,
            "%s{\"lane\":\"%s\",\"delay_ms\":%.3f,\"rx_frames\":%llu,\"rx_bytes\":%llu,\"tx_frames\":%llu,"
            "\"tx_bytes\":%llu,\"ring_full_drops\":%llu,\"tx_errors\":%llu,\"peak_bytes\":%llu,"
            "\"socket_drops_since_last\":%u}",
            sep, l->label, (double)l->delay_ns / 1e6, (unsigned long long)l->rx_frames,
            (unsigned long long)l->rx_bytes, (unsigned long long)l->tx_frames, (unsigned long long)l->tx_bytes,
            (unsigned long long)l->ring_full_drops, (unsigned long long)l->tx_errors,
            (unsigned long long)l->peak_bytes, st.tp_drops);
    sep = ",";
  }
  fprintf(stderr, "]}\n");
  fflush(stderr);
}

static void usage(void) {
  fprintf(stderr, "usage: delay_line -a IFA -b IFB [-A MS_A_TO_B] [-B MS_B_TO_A] [-r RING_MIB]\n"
                  "       at least one of -A and -B; a direction without a delay is not handled\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *ifname[2] = {NULL, NULL};
  double delay_ms[2] = {-1, -1};
  long ring_mib = 64;
  int opt;
  while ((opt = getopt(argc, argv, "a:b:A:B:r:h")) != -1) {
    switch (opt) {
    case 'a': ifname[0] = optarg; break;
    case 'b': ifname[1] = optarg; break;
    case 'A': delay_ms[0] = atof(optarg); break;
    case 'B': delay_ms[1] = atof(optarg); break;
    case 'r': ring_mib = atol(optarg); break;
    default: usage();
    }
  }
  if (!ifname[0] || !ifname[1] || ring_mib < 1 || (delay_ms[0] < 0 && delay_ms[1] < 0)) usage();

  // Block the signals before any thread exists so that only main's sigwait sees them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  int tx_fd[2] = {packet_socket(ifname[0], 0), packet_socket(ifname[1], 0)};
  pthread_t threads[2];
  for (int i = 0; i < 2; i++) {
    struct lane *l = &lanes[i];
    snprintf(l->label, sizeof l->label, "%s->%s", ifname[i], ifname[1 - i]);
    if (delay_ms[i] < 0) continue;
    l->enabled = 1;
    l->delay_ns = (uint64_t)(delay_ms[i] * 1e6);
    l->rx_fd = packet_socket(ifname[i], 1);
    l->tx_fd = tx_fd[1 - i];
    l->cap = (uint64_t)ring_mib << 20;
    l->ring = mmap(NULL, l->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    l->rxbuf = mmap(NULL, (size_t)BATCH * FRAME_MAX_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    if (l->ring == MAP_FAILED || l->rxbuf == MAP_FAILED) die("mmap");
  }
  for (int i = 0; i < 2; i++) {
    if (!lanes[i].enabled) continue;
    if (pthread_create(&threads[i], NULL, lane_main, &lanes[i]) != 0) die("pthread_create");
    fprintf(stderr, "delay_line: %s delayed by %.3f ms (ring %ld MiB)\n", lanes[i].label,
            (double)lanes[i].delay_ns / 1e6, ring_mib);
  }
  for (int i = 0; i < 2; i++)
    if (!lanes[i].enabled) fprintf(stderr, "delay_line: %s not handled\n", lanes[i].label);
  for (;;) {
    int sig;
    if (sigwait(&sigs, &sig) != 0) continue;
    print_counters();
    if (sig != SIGUSR1) return 0;
  }
}
