/* net_latency: closed-loop ping-pong latency client (the thesis's latency
 * benchmark) on dpnet, or on Linux sockets with --kernel, measured alike.
 *
 *   net_latency [EAL options] -- [dpnet options] --server IP [options]
 *   net_latency --kernel --server IP [options]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpnet.h"
#include "latency_stats.h"
#include "net_latency.h"

static struct lat_opts o = {.port = 7,
                            .conns = 1,
                            .size = 64,
                            .count = 10000,
                            .warmup = 1000,
                            .timeout_s = 60,
                            .pipeline = 1};

static void usage(const char *prog) {
    fprintf(
        stderr,
        "usage: %s [EAL options] -- [dpnet options] --server IP [options]\n"
        "       %s --kernel --server IP [options]\n"
        "  --server IP      echo server address (required)\n"
        "  --port N         server port (default 7)\n"
        "  --udp            UDP instead of TCP\n"
        "  --conns N        concurrent connections/flows, each one request in flight (default 1)\n"
        "  --size B         message size in bytes (default 64; UDP: at most 1472)\n"
        "  --count N        round trips to measure (default 10000)\n"
        "  --duration S     measure for S seconds instead of a count\n"
        "  --warmup N       round trips before measuring (default 1000)\n"
        "  --timeout S      give up after S seconds (default 60)\n"
        "  --json           one JSON line: rtt_us{min,p50,p90,p99,p99.9,max}, messages, "
        "msgs_per_s\n"
        "  --http PATH      dpnet: HTTP/1.1 GET PATH with keep-alive (to --port), the\n"
        "                   round trip ends with the whole response, whose status line\n"
        "                   is checked (an HTTP server's latency)\n"
        "  --kernel         measure over Linux sockets instead of dpnet (no EAL options)\n"
        "  --spin           with --kernel: non-blocking sockets polled in a loop, never\n"
        "                   sleeping (SO_BUSY_POLL too), as a latency-minded Linux client\n"
        "  --pipeline K     TCP: K requests in flight on each connection (default 1); each\n"
        "                   round trip is one request's, msgs_per_s counts requests; the\n"
        "                   requests an answer lets start go out in one write\n"
        "  --connect-rate   TCP: every request on a new connection (connect, one --size\n"
        "                   echo, close), --conns of them in parallel; a sample is connect\n"
        "                   to end of echo, msgs_per_s counts connections\n"
        "  --bulk BYTES     TCP: stream BYTES on each connection and read the echo back;\n"
        "                   reports echoed Gbit/s after the first eighth (--size: write size)\n"
        "  --verify         with --bulk (dpnet): compare every echoed byte with the one\n"
        "                   sent; a difference ends the run with exit 1\n"
        "  --samples FILE   write every measured round trip (us, one a line, in order)\n"
        "  --trace          dpnet: time the stages of each answer received and request\n"
        "                   sent; print per-stage medians at exit\n",
        prog, prog);
}

static int bad(const char *opt, const char *val, const char *why) {
    fprintf(stderr, "net_latency: option '--%s %s': %s\n", opt, val, why);
    return -1;
}

static int parse_num(const char *opt, const char *val, uint64_t min, uint64_t max, uint64_t *out) {
    char *end;
    unsigned long long v = strtoull(val, &end, 10);
    if (*val == '\0' || *val == '-' || *end != '\0' || v < min || v > max) {
        char why[96];
        snprintf(why, sizeof(why), "must be a number from %llu to %llu", (unsigned long long)min,
                 (unsigned long long)max);
        return bad(opt, val, why);
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv) {
    static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"udp", no_argument, NULL, 'u'},
                                         {"conns", required_argument, NULL, 'n'},
                                         {"size", required_argument, NULL, 'b'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"warmup", required_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"kernel", no_argument, NULL, 'k'},
                                         {"spin", no_argument, NULL, 'K'},
                                         {"pipeline", required_argument, NULL, 'P'},
                                         {"connect-rate", no_argument, NULL, 'C'},
                                         {"bulk", required_argument, NULL, 'B'},
                                         {"verify", no_argument, NULL, 'V'},
                                         {"samples", required_argument, NULL, 'S'},
                                         {"trace", no_argument, NULL, 'T'},
                                         {"http", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt, idx;
    uint64_t v;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        const char *name = opt == '?' || opt == 'h' ? "" : opts[idx].name;
        switch (opt) {
        case 's':
            if (dpn_parse_ip(optarg, &o.server_ip) != 0)
                return bad(name, optarg, "not an IPv4 address");
            break;
        case 'p':
            if (parse_num(name, optarg, 1, 65535, &v) != 0)
                return -1;
            o.port = (uint16_t)v;
            break;
        case 'u':
            o.udp = true;
            break;
        case 'n':
            if (parse_num(name, optarg, 1, 8192, &v) != 0)
                return -1;
            o.conns = (unsigned)v;
            break;
        case 'b':
            if (parse_num(name, optarg, 1, 16 * 1024 * 1024, &v) != 0)
                return -1;
            o.size = (size_t)v;
            break;
        case 'c':
            if (parse_num(name, optarg, 1, 100000000, &v) != 0)
                return -1;
            o.count = v;
            break;
        case 'd':
            if (parse_num(name, optarg, 1, 86400, &v) != 0)
                return -1;
            o.duration_s = v;
            o.count = 0;
            break;
        case 'w':
            if (parse_num(name, optarg, 0, 100000000, &v) != 0)
                return -1;
            o.warmup = v;
            break;
        case 't':
            if (parse_num(name, optarg, 1, 86400, &v) != 0)
                return -1;
            o.timeout_s = v;
            break;
        case 'j':
            o.json = true;
            break;
        case 'H':
            if (optarg[0] != '/' || strlen(optarg) > 200 || strpbrk(optarg, " \r\n") != NULL)
                return bad(name, optarg, "an absolute path without spaces, at most 200 bytes");
            o.http = optarg;
            break;
        case 'k':
            o.kernel = true;
            break;
        case 'K':
            o.spin = true;
            break;
        case 'P':
            if (parse_num(name, optarg, 1, 4096, &v) != 0)
                return -1;
            o.pipeline = (unsigned)v;
            break;
        case 'C':
            o.connect_rate = true;
            break;
        case 'B':
            if (parse_num(name, optarg, 8, 1ull << 40, &v) != 0)
                return -1;
            o.bulk_bytes = v;
            break;
        case 'V':
            o.verify = true;
            break;
        case 'S':
            o.samples = optarg;
            break;
        case 'T':
            o.trace = true;
            break;
        default:
            usage(argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "net_latency: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o.server_ip == 0) {
        fprintf(stderr, "net_latency: --server IP is required\n");
        return -1;
    }
    if (o.udp && o.size > 1472) {
        fprintf(stderr,
                "net_latency: --size %zu: UDP messages must fit one frame (at most "
                "1472 B)\n",
                o.size);
        return -1;
    }
    if (o.http != NULL &&
        (o.udp || o.kernel || o.pipeline > 1 || o.connect_rate || o.bulk_bytes > 0)) {
        fprintf(stderr, "net_latency: --http is dpnet TCP, one request in flight\n");
        return -1;
    }
    if (o.udp && (o.pipeline > 1 || o.connect_rate || o.bulk_bytes > 0)) {
        fprintf(stderr, "net_latency: --pipeline, --connect-rate and --bulk are TCP only\n");
        return -1;
    }
    if (o.verify && (o.bulk_bytes == 0 || o.kernel)) {
        fprintf(stderr, "net_latency: --verify goes with --bulk, on dpnet\n");
        return 2;
    }
    if ((o.pipeline > 1) + o.connect_rate + (o.bulk_bytes > 0) > 1) {
        fprintf(stderr, "net_latency: --pipeline, --connect-rate and --bulk exclude each other\n");
        return -1;
    }
    if (o.duration_s > 0 && o.timeout_s < o.duration_s + 10)
        o.timeout_s = o.duration_s + 10;
    return 0;
}

static bool has_kernel_flag(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--kernel") == 0)
            return true;
    return false;
}

int main(int argc, char **argv) {
    if (has_kernel_flag(argc, argv)) {
        if (parse_args(argc, argv) != 0)
            return 2;
        return lat_run_kernel(&o);
    }
    struct dpn_worker *w;
    if (dpn_init(&argc, &argv, &w) != 0)
        return 2;
    if (parse_args(argc, argv) != 0) {
        dpn_close(w);
        return 2;
    }
    int rc = lat_run_dpnet(w, &o);
    dpn_close(w);
    return rc;
}
