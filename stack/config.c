/* Host configuration: libconfig file, command-line overrides, validation.
 * Set-up code only: clear error messages matter more than speed. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WHY_LEN 384 /* room for a reason plus a quoted, clipped value */
#define QUOTE 64    /* longest part of a user's value echoed back */

/* Every error is formatted here. The contract is one line, and libconfig strings may hold
 * "\n", so control characters are blanked. Also used for the inner "why" buffers. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
    va_list ap;
    if (err == NULL || errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return -1;
}

void dpn_config_defaults(struct dpn_config *cfg) {
    *cfg = (struct dpn_config){.mtu = 1500,
                               .rx_desc = 1024,
                               .tx_desc = 1024,
                               .syn_guard = 1,
                               .tso = 1,
                               .send_zc = 1,
                               .tcp_fast_path = 1,
                               .poll = DPN_POLL_HYBRID,
                               .spin_us = 50,
                               .sleep_max_us = 1000,
                               .mbufs = 16383,
                               .mbuf_cache = 256,
                               .tcp_sndbuf = 262144,
                               .tcp_rcvbuf = 262144,
                               .standalone = true,
                               .queues = 4};
}

/* ---- parsers ---- */

int dpn_parse_ipv4(const char *s, uint32_t *ip) {
    struct in_addr a;
    /* inet_pton, unlike inet_aton, takes only a.b.c.d: no hex, octal or short forms. */
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *ip = ntohl(a.s_addr);
    return 0;
}

int dpn_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out) {
    /* strtoull alone would take signs, spaces and 0x */
    if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int dpn_parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix_len) {
    char addr[INET_ADDRSTRLEN];
    const char *slash = s ? strchr(s, '/') : NULL;
    uint32_t len, a;
    if (slash == NULL || (size_t)(slash - s) >= sizeof addr)
        return -1;
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    if (dpn_parse_ipv4(addr, &a) < 0 || dpn_parse_u32(slash + 1, 1, 32, &len) < 0)
        return -1;
    *ip = a;
    *prefix_len = (uint8_t)len;
    return 0;
}

int dpn_parse_mac(const char *s, uint8_t mac[6]) {
    uint8_t m[6];
    if (s == NULL || strlen(s) != 17)
        return -1;
    for (int i = 0; i < 6; i++) {
        char pair[3] = {s[3 * i], s[3 * i + 1], '\0'};
        if (!isxdigit((unsigned char)pair[0]) || !isxdigit((unsigned char)pair[1]) ||
            (i < 5 && s[3 * i + 2] != ':'))
            return -1;
        m[i] = (uint8_t)strtoul(pair, NULL, 16);
    }
    memcpy(mac, m, 6); /* only on success, like the other parsers */
    return 0;
}

const char *dpn_poll_mode_name(enum dpn_poll_mode m) {
    static const char *const names[] = {"busy", "hybrid", "interrupt"};
    return (unsigned)m <= DPN_POLL_INTERRUPT ? names[m] : "unknown";
}

/* ---- value setters, shared by the file and the command line ---- */

static uint32_t mask_of(uint8_t len) {
    return len >= 32 ? 0xffffffffu : ~(0xffffffffu >> len);
}

static void ip_str(uint32_t ip, char buf[INET_ADDRSTRLEN]) {
    struct in_addr a = {.s_addr = htonl(ip)};
    inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/* Why an address cannot be a host's (or gateway's) own unicast address, or NULL. */
static const char *not_unicast(uint32_t ip) {
    if (ip == 0)
        return "must not be 0.0.0.0";
    if (ip == 0xffffffffu)
        return "must not be the broadcast address 255.255.255.255";
    return (ip >> 28) == 0xe ? "must not be a multicast address (224.0.0.0/4)" : NULL;
}

static int set_device(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    size_t len = strlen(s);
    if (len == 0 || len >= DPN_CFG_STR)
        return fail(why, n,
                    "must be a non-empty DPDK device name shorter than %d characters, "
                    "like net_tap0,iface=dpn0 or 0000:03:00.0",
                    DPN_CFG_STR);
    memcpy(cfg->device, s, len + 1);
    return 0;
}

static int set_address(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    uint32_t ip, host;
    uint8_t len;
    const char *bad;
    char net[INET_ADDRSTRLEN];
    if (dpn_parse_cidr(s, &ip, &len) < 0)
        return fail(why, n, "must be ADDR/LEN with LEN 1..32, like 10.0.0.2/24, not \"%.*s\"",
                    QUOTE, s);
    if ((bad = not_unicast(ip)) != NULL)
        return fail(why, n, "%s, not \"%.*s\"", bad, QUOTE, s);
    /* In a /31 or /32 every address is a host address (RFC 3021); wider subnets reserve
     * their first and last address. */
    host = ip & ~mask_of(len);
    ip_str(ip & mask_of(len), net);
    if (len <= 30 && (host == 0 || host == ~mask_of(len)))
        return fail(why, n, "\"%.*s\" is the %s address of %s/%u; use a host address", QUOTE, s,
                    host ? "broadcast" : "network", net, (unsigned)len);
    cfg->ip = ip;
    cfg->prefix_len = len;
    cfg->ip_set = true;
    return 0;
}

static int set_gateway(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    uint32_t ip;
    const char *bad;
    if (dpn_parse_ipv4(s, &ip) < 0)
        return fail(why, n, "must be an IPv4 address a.b.c.d like 10.0.0.1, not \"%.*s\"", QUOTE,
                    s);
    if ((bad = not_unicast(ip)) != NULL)
        return fail(why, n, "%s, not \"%.*s\"", bad, QUOTE, s);
    cfg->gateway = ip;
    return 0;
}

static int set_mac(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    static const uint8_t zero[6];
    uint8_t m[6];
    if (dpn_parse_mac(s, m) < 0)
        return fail(why, n, "must be six hex pairs like 02:00:00:00:00:01, not \"%.*s\"", QUOTE, s);
    /* The port's own address: with the group bit set, or all zeros, it gets no unicast. */
    if ((m[0] & 1) || memcmp(m, zero, 6) == 0)
        return fail(why, n, "must be a unicast MAC (first byte even, not all zeros), not \"%s\"",
                    s);
    memcpy(cfg->mac, m, 6);
    cfg->mac_set = true;
    return 0;
}

static int set_poll(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    for (int m = DPN_POLL_BUSY; m <= DPN_POLL_INTERRUPT; m++)
        if (strcmp(s, dpn_poll_mode_name((enum dpn_poll_mode)m)) == 0) {
            cfg->poll = (enum dpn_poll_mode)m;
            return 0;
        }
    return fail(why, n, "must be busy, hybrid or interrupt, not \"%.*s\"", QUOTE, s);
}

const char *dpn_csum_mode_name(enum dpn_csum_mode m) {
    static const char *const names[] = {"auto", "full", "trust", "none"};
    return (unsigned)m <= DPN_CSUM_NONE ? names[m] : "unknown";
}

static int set_csum(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    for (int m = DPN_CSUM_AUTO; m <= DPN_CSUM_NONE; m++)
        if (strcmp(s, dpn_csum_mode_name((enum dpn_csum_mode)m)) == 0) {
            cfg->csum = (enum dpn_csum_mode)m;
            return 0;
        }
    return fail(why, n, "must be auto, full, trust or none, not \"%.*s\"", QUOTE, s);
}

const char *dpn_steer_mode_name(enum dpn_steer_mode m) {
    static const char *const names[] = {"auto", "hardware", "software", "kernel"};
    return (unsigned)m <= DPN_STEER_KERNEL ? names[m] : "unknown";
}

static int set_steering(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    for (int m = DPN_STEER_AUTO; m <= DPN_STEER_KERNEL; m++)
        if (strcmp(s, dpn_steer_mode_name((enum dpn_steer_mode)m)) == 0) {
            cfg->steering = (enum dpn_steer_mode)m;
            return 0;
        }
    return fail(why, n, "must be auto, kernel, hardware or software, not \"%.*s\"", QUOTE, s);
}

/* "none", "tap" (interface dpnx0) or "tap:IFNAME". */
static int set_exception(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    bool named = strncmp(s, "tap:", 4) == 0;
    const char *name = named ? s + 4 : NULL;
    size_t len = named ? strnlen(s, 4 + 16) - 4 : 0;
    bool ok = strcmp(s, "none") == 0 || strcmp(s, "tap") == 0 || (len > 0 && len < 16);
    for (const char *c = name; ok && c && *c; c++)
        ok = isalnum((unsigned char)*c) || strchr("._-", *c);
    if (!ok)
        return fail(why, n,
                    "must be none, tap or tap:IFNAME (IFNAME up to 15 of [A-Za-z0-9._-]), "
                    "not \"%.*s\"",
                    QUOTE, s);
    snprintf(cfg->exception, sizeof cfg->exception, "%s",
             strcmp(s, "none") == 0 ? ""
             : name                 ? name
                                    : "dpnx0");
    return 0;
}

int dpn_fault_parse(const char *spec, struct dpn_fault_spec *f, char *err, size_t errlen) {
    char buf[DPN_CFG_STR], *save = NULL;
    struct dpn_fault_spec s = {.rx = true, .tx = true, .seed = 1};
    if (strlen(spec) >= sizeof buf)
        return fail(err, errlen, "fault spec longer than %zu characters", sizeof buf - 1);
    strcpy(buf, spec);
    for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (v == NULL)
            return fail(err, errlen, "\"%.*s\" is not key=value", QUOTE, kv);
        *v++ = '\0';
        double *prob = !strcmp(kv, "drop")      ? &s.drop
                       : !strcmp(kv, "dup")     ? &s.dup
                       : !strcmp(kv, "reorder") ? &s.reorder
                       : !strcmp(kv, "corrupt") ? &s.corrupt
                                                : NULL;
        char *end;
        if (prob != NULL) {
            *prob = strtod(v, &end);
            if (end == v || *end != '\0' || !(*prob >= 0 && *prob <= 1))
                return fail(err, errlen, "%s must be a probability 0..1, not \"%.*s\"", kv, QUOTE,
                            v);
        } else if (!strcmp(kv, "delay") || !strcmp(kv, "down")) {
            uint32_t a, b = 0;
            char *c = strchr(v, ':');
            if (c != NULL)
                *c = '\0';
            if (dpn_parse_u32(v, 0, 10000000, &a) < 0 ||
                (c != NULL && dpn_parse_u32(c + 1, 0, 10000000, &b) < 0) ||
                (!strcmp(kv, "down") && c == NULL))
                return fail(err, errlen, "%s must be %s", kv,
                            !strcmp(kv, "delay") ? "US or US:JITTER_US" : "AT_MS:FOR_MS");
            if (!strcmp(kv, "delay")) {
                s.delay_us = a;
                s.jitter_us = b > a ? a : b;
            } else {
                s.down_at_ms = a;
                s.down_for_ms = b;
            }
        } else if (!strcmp(kv, "seed")) {
            uint32_t seed;
            if (dpn_parse_u32(v, 0, UINT32_MAX, &seed) < 0)
                return fail(err, errlen, "seed must be an integer, not \"%.*s\"", QUOTE, v);
            s.seed = seed;
        } else if (!strcmp(kv, "dir")) {
            s.rx = !strcmp(v, "rx") || !strcmp(v, "both");
            s.tx = !strcmp(v, "tx") || !strcmp(v, "both");
            if (!s.rx && !s.tx)
                return fail(err, errlen, "dir must be rx, tx or both, not \"%.*s\"", QUOTE, v);
        } else {
            return fail(err, errlen,
                        "unknown fault \"%.*s\" (drop, dup, reorder, corrupt, delay, down, "
                        "seed, dir)",
                        QUOTE, kv);
        }
    }
    s.on = s.drop > 0 || s.dup > 0 || s.reorder > 0 || s.corrupt > 0 || s.delay_us > 0 ||
           s.down_for_ms > 0;
    *f = s;
    return 0;
}

static int set_fault(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    return dpn_fault_parse(s, &cfg->fault, why, n);
}

static int set_app(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof cfg->app)
        return fail(why, n, "must be a name of 1..%zu characters", sizeof cfg->app - 1);
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("._:-", *c))
            return fail(why, n, "may hold letters, digits and . _ : - only, not \"%.*s\"", QUOTE,
                        s);
    memcpy(cfg->app, s, len + 1);
    return 0;
}

static int set_capture(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    if (strlen(s) >= sizeof cfg->capture)
        return fail(why, n, "a path of at most %zu characters", sizeof cfg->capture - 1);
    snprintf(cfg->capture, sizeof cfg->capture, "%s", s);
    return 0;
}

static int set_capture_filter(struct dpn_config *cfg, const char *s, char *why, size_t n) {
    if (strlen(s) >= sizeof cfg->capture_filter)
        return fail(why, n, "a filter of at most %zu characters", sizeof cfg->capture_filter - 1);
    snprintf(cfg->capture_filter, sizeof cfg->capture_filter, "%s", s);
    return 0;
}

/* One table drives the file keys, the options and the range checks, so they cannot drift
 * apart. Integer fields have set == NULL; string fields have a setter and a description. */
struct field {
    const char *group, *key, *opt; /* opt: command-line name, NULL = file only */
    size_t off, size;
    uint32_t min, max;
    bool pow2;
    int (*set)(struct dpn_config *cfg, const char *s, char *why, size_t n);
    const char *desc;
};

#define INT(m, lo, hi, p2)                                                                         \
    offsetof(struct dpn_config, m), sizeof(((struct dpn_config *)0)->m), lo, hi, p2, NULL, NULL
#define STR(fn, d) 0, 0, 0, 0, false, fn, d

static const struct field fields[] = {
    {"port", "device", "dev", STR(set_device, "a DPDK device like net_tap0,iface=dpn0")},
    {"port", "mtu", "mtu", INT(mtu, 68, 9000, false)},
    {"port", "rx_desc", NULL, INT(rx_desc, 64, 4096, true)},
    {"port", "tx_desc", NULL, INT(tx_desc, 64, 4096, true)},
    {"port", "syn_guard", "syn-guard", INT(syn_guard, 0, 1, false)},
    {"port", "tso", "tso", INT(tso, 0, 2, false)},
    {"port", "csum", "csum", STR(set_csum, "auto, full, trust or none")},
    {"ip", "address", "ip", STR(set_address, "ADDR/LEN like 10.0.0.2/24")},
    {"ip", "gateway", "gw", STR(set_gateway, "an IPv4 address like 10.0.0.1")},
    {"ip", "mac", "mac", STR(set_mac, "a MAC like 02:00:00:00:00:01")},
    {"poll", "mode", "poll", STR(set_poll, "busy, hybrid or interrupt")},
    {"poll", "spin_us", "spin-us", INT(spin_us, 0, 1000000, false)},
    {"poll", "sleep_max_us", NULL, INT(sleep_max_us, 1, 1000000, false)},
    {"pools", "mbufs", NULL, INT(mbufs, 1024, 1048576, false)},
    {"pools", "mbuf_cache", NULL, INT(mbuf_cache, 0, 512, false)},
    {"tcp", "sndbuf", NULL, INT(tcp_sndbuf, 2920, 524288, false)},
    {"tcp", "rcvbuf", NULL, INT(tcp_rcvbuf, 2920, 524288, false)},
    {"tcp", "send_zc", "send-zc", INT(send_zc, 0, 2, false)},
    {"tcp", "fast_path", "tcp-fast-path", INT(tcp_fast_path, 0, 1, false)},
    {"worker", "app", "app", STR(set_app, "an application name like web-1")},
    {"worker", "quiet", NULL, INT(quiet, 0, 1, false)},
    {"daemon", "queues", "queues", INT(queues, 2, 16, false)},
    {"daemon", "steering", "steering", STR(set_steering, "auto, kernel, hardware or software")},
    {"daemon", "exception", "exception", STR(set_exception, "none, tap or tap:IFNAME")},
    {"capture", "file", "capture", STR(set_capture, "a pcapng file (standalone workers)")},
    {"capture", "filter", "capture-filter",
     STR(set_capture_filter, "tcpdump's filter syntax, like 'tcp port 80'")},
    {"capture", "snaplen", "capture-snaplen", INT(capture_snaplen, 0, 16384, false)},
    {"fault", "spec", "fault", STR(set_fault, "a fault spec like drop=0.05,seed=1")},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static const char *range_desc(const struct field *f, char buf[64]) {
    snprintf(buf, 64, "%s %u..%u", f->pow2 ? "a power of two in" : "an integer in", f->min, f->max);
    return buf;
}

static bool in_range(const struct field *f, long long v) {
    return v >= f->min && v <= f->max && (!f->pow2 || (v & (v - 1)) == 0);
}

static int put_int(struct dpn_config *cfg, const struct field *f, long long v, char *why,
                   size_t n) {
    char desc[64];
    uint16_t v16 = (uint16_t)v;
    uint32_t v32 = (uint32_t)v;
    if (!in_range(f, v))
        return fail(why, n, "must be %s, not %lld", range_desc(f, desc), v);
    memcpy((char *)cfg + f->off, f->size == 2 ? (void *)&v16 : (void *)&v32, f->size);
    return 0;
}

/* ---- the file ---- */

struct loader { /* what every step of reading one file needs */
    struct dpn_config *cfg;
    const char *path;
    char *err;
    size_t errlen;
};

static const char *type_name(int t) {
    static const char *const names[] = {"nothing",    "a group",  "an integer",
                                        "an integer", "a float",  "a string",
                                        "a boolean",  "an array", "a list"};
    return t >= 0 && t <= CONFIG_TYPE_LIST ? names[t] : "unknown";
}

static int key_fail(const struct loader *l, const config_setting_t *s, const char *key,
                    const char *why) {
    const char *file = config_setting_source_file(s); /* differs from path in @include files */
    return fail(l->err, l->errlen, "%s:%u: key '%s': %s", file ? file : l->path,
                (unsigned)config_setting_source_line(s), key, why);
}

static int load_field(const struct loader *l, const struct field *f, const config_setting_t *s,
                      const char *key) {
    char why[WHY_LEN], desc[64];
    int t = config_setting_type(s), rc;
    if (f->set != NULL && t != CONFIG_TYPE_STRING)
        rc = fail(why, sizeof why, "must be a string (%s), not %s", f->desc, type_name(t));
    else if (f->set != NULL)
        rc = f->set(l->cfg, config_setting_get_string(s), why, sizeof why);
    else if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) /* no silent float truncation */
        rc = fail(why, sizeof why, "must be %s, not %s", range_desc(f, desc), type_name(t));
    else
        rc = put_int(l->cfg, f, config_setting_get_int64(s), why, sizeof why);
    return rc < 0 ? key_fail(l, s, key, why) : 0;
}

static const struct field *find_field(const char *group, const char *key) {
    for (size_t k = 0; k < NFIELDS; k++)
        if (!strcmp(fields[k].group, group) && (key == NULL || !strcmp(fields[k].key, key)))
            return &fields[k];
    return NULL;
}

static int load_group(const struct loader *l, const config_setting_t *g, const char *gname) {
    char why[WHY_LEN], key[128];
    if (!config_setting_is_group(g)) {
        fail(why, sizeof why, "must be a group { ... }, not %s", type_name(config_setting_type(g)));
        return key_fail(l, g, gname, why);
    }
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const struct field *f = find_field(gname, config_setting_name(s));
        snprintf(key, sizeof key, "%s.%.64s", gname, config_setting_name(s));
        if (f != NULL && load_field(l, f, s, key) < 0)
            return -1;
        if (f != NULL)
            continue;
        /* List the group's keys (contiguous in the table) so the fix is obvious. */
        size_t used = (size_t)snprintf(why, sizeof why, "unknown key (allowed:");
        for (f = find_field(gname, NULL); f < fields + NFIELDS && !strcmp(f->group, gname); f++)
            used += (size_t)snprintf(why + used, sizeof why - used, " %s", f->key);
        snprintf(why + used, sizeof why - used, ")"); /* fits: the lists are short */
        return key_fail(l, s, key, why);
    }
    return 0;
}

static int load_eal(const struct loader *l, const config_setting_t *a) {
    char why[WHY_LEN], key[32];
    int n = config_setting_length(a);
    if (!config_setting_is_array(a) && !config_setting_is_list(a))
        n = fail(why, sizeof why, "must be a list of strings like [\"-l\", \"0\"], not %s",
                 type_name(config_setting_type(a)));
    else if (n > DPN_CFG_MAX_EAL_ARGS)
        n = fail(why, sizeof why, "must have at most %d arguments, not %d", DPN_CFG_MAX_EAL_ARGS,
                 n);
    if (n < 0)
        return key_fail(l, a, "eal", why);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(a, (unsigned)i);
        const char *v = config_setting_get_string(s);
        snprintf(key, sizeof key, "eal[%d]", i);
        if (v == NULL || strlen(v) >= DPN_CFG_STR) {
            fail(why, sizeof why, "must be a string shorter than %d characters, not %s",
                 DPN_CFG_STR, v ? "a longer one" : type_name(config_setting_type(s)));
            return key_fail(l, s, key, why);
        }
        memcpy(l->cfg->eal_argv[i], v, strlen(v) + 1);
    }
    l->cfg->eal_argc = n;
    return 0;
}

static int load_mode(const struct loader *l, const config_setting_t *s) {
    const char *v = config_setting_get_string(s);
    char why[WHY_LEN];
    if (v != NULL && strcmp(v, "standalone") == 0) {
        l->cfg->standalone = true;
        return 0;
    }
    if (v != NULL && strcmp(v, "attached") == 0) {
        l->cfg->standalone = false;
        return 0;
    }
    fail(why, sizeof why, "must be \"standalone\" or \"attached\", not %s%.*s%s", v ? "\"" : "",
         QUOTE, v ? v : type_name(config_setting_type(s)), v ? "\"" : "");
    return key_fail(l, s, "mode", why);
}

static int load_root(const struct loader *l, const config_setting_t *root) {
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        int rc;
        if (!strcmp(name, "eal"))
            rc = load_eal(l, s);
        else if (!strcmp(name, "mode"))
            rc = load_mode(l, s);
        else if (find_field(name, NULL) != NULL)
            rc = load_group(l, s, name);
        else
            rc = key_fail(l, s, name, "unknown key (allowed: eal mode port ip poll pools tcp)");
        if (rc < 0)
            return -1;
    }
    return 0;
}

int dpn_config_load(struct dpn_config *cfg, const char *path, char *err, size_t errlen) {
    const struct loader l = {cfg, path, err, errlen};
    struct stat st;
    config_t c;
    int rc;
    snprintf(cfg->source, sizeof cfg->source, "%s", path);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    /* libconfig's flex scanner exit()s on a read error, so refuse directories up front. */
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        return fail(err, errlen, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    config_init(&c);
    if (config_read(&c, fp) != CONFIG_TRUE) /* error file is NULL unless in an @include */
        rc = fail(err, errlen, "%s:%d: syntax error: %s",
                  config_error_file(&c) ? config_error_file(&c) : path, config_error_line(&c),
                  config_error_text(&c));
    else
        rc = load_root(&l, config_root_setting(&c));
    config_destroy(&c);
    fclose(fp);
    return rc;
}

/* ---- the command line ---- */

enum opt_kind { OPT_NONE, OPT_CONFIG, OPT_STANDALONE, OPT_QUIET, OPT_FIELD };

struct opt {
    enum opt_kind kind;
    const struct field *f;
    const char *name;  /* as typed, for messages: namelen chars */
    int namelen, used; /* used: argv slots taken */
    const char *val;
};

static enum opt_kind opt_kind(const char *name, size_t n, const struct field **f) {
    if (n == 6 && !strncmp(name, "config", n))
        return OPT_CONFIG;
    if (n == 10 && !strncmp(name, "standalone", n))
        return OPT_STANDALONE;
    if (n == 5 && !strncmp(name, "quiet", n))
        return OPT_QUIET;
    for (size_t k = 0; k < NFIELDS; k++)
        if (fields[k].opt && strlen(fields[k].opt) == n && !strncmp(name, fields[k].opt, n))
            return *f = &fields[k], OPT_FIELD;
    return OPT_NONE;
}

/* Recognise argv[i] as one of ours: 1 if it is, 0 if not, -1 (with err) if malformed. */
static int match_opt(int argc, char **argv, int i, struct opt *o, char *err, size_t errlen) {
    const char *a = argv[i], *eq = strchr(a, '=');
    *o = (struct opt){.kind = OPT_NONE, .name = a, .namelen = (int)strlen(a), .used = 1};
    if (strcmp(a, "-c") == 0) {
        o->kind = OPT_CONFIG;
    } else if (strncmp(a, "--", 2) == 0 && a[2] != '\0') {
        o->namelen = eq ? (int)(eq - a) : o->namelen;
        o->kind = opt_kind(a + 2, (size_t)o->namelen - 2, &o->f);
        o->val = eq ? eq + 1 : NULL;
        if ((o->kind == OPT_STANDALONE || o->kind == OPT_QUIET) && eq)
            return fail(err, errlen, "option '%.*s': takes no value", o->namelen, a);
    }
    if (o->kind == OPT_NONE || o->kind == OPT_STANDALONE || o->kind == OPT_QUIET || o->val != NULL)
        return o->kind != OPT_NONE;
    /* A following option means the value was forgotten: no valid value starts with '-'. */
    if (i + 1 >= argc || argv[i + 1][0] == '-')
        return fail(err, errlen, "option '%.*s': needs a value", o->namelen, a);
    o->val = argv[i + 1];
    o->used = 2;
    return 1;
}

static int apply_opt(struct dpn_config *cfg, const struct opt *o, char *err, size_t errlen) {
    char why[WHY_LEN], desc[64];
    uint32_t v;
    int rc;
    if (o->kind == OPT_STANDALONE) {
        cfg->standalone = true;
        return 0;
    }
    if (o->kind == OPT_QUIET) {
        cfg->quiet = 1;
        return 0;
    }
    if (o->f->set != NULL)
        rc = o->f->set(cfg, o->val, why, sizeof why);
    else if (dpn_parse_u32(o->val, 0, UINT32_MAX, &v) < 0)
        rc = fail(why, sizeof why, "must be %s, not \"%.*s\"", range_desc(o->f, desc), QUOTE,
                  o->val);
    else
        rc = put_int(cfg, o->f, v, why, sizeof why);
    return rc < 0 ? fail(err, errlen, "option '%.*s': %s", o->namelen, o->name, why) : 0;
}

void dpn_config_help(FILE *f) {
    char desc[64];
    fprintf(f, "  -c FILE                   a libconfig file of the keys below (and eal = [...])\n"
               "  --quiet                   worker.quiet = 1: no counters on stderr at exit\n");
    for (size_t k = 0; k < NFIELDS; k++) {
        const struct field *x = &fields[k];
        char opt[40] = "", key[40];
        if (x->opt != NULL)
            snprintf(opt, sizeof(opt), "--%s VALUE", x->opt);
        snprintf(key, sizeof(key), "%s.%s", x->group, x->key);
        fprintf(f, "  %-25s %-18s %s\n", opt[0] ? opt : "(file only)", key,
                x->set != NULL ? x->desc : range_desc(x, desc));
    }
}

int dpn_config_parse_args(struct dpn_config *cfg, int *argc, char **argv, char *err,
                          size_t errlen) {
    struct opt o;
    int i, out = 1, rc;
    if (*argc < 1) /* no argv[0] to keep */
        return 0;
    /* Pass 1: config files first, so the other options override them whatever the order.
     * "--" ends our options, as with getopt; it and what follows belong to the app. */
    for (i = 1; i < *argc && strcmp(argv[i], "--") != 0; i += o.used) {
        if ((rc = match_opt(*argc, argv, i, &o, err, errlen)) < 0)
            return -1;
        if (rc > 0 && o.kind == OPT_CONFIG && dpn_config_load(cfg, o.val, err, errlen) < 0)
            return -1;
    }
    /* Pass 2: apply the rest in order, compacting what is left for the application. */
    for (i = 1; i < *argc && strcmp(argv[i], "--") != 0; i += o.used) {
        if (match_opt(*argc, argv, i, &o, err, errlen) == 0)
            argv[out++] = argv[i];
        else if (o.kind != OPT_CONFIG && apply_opt(cfg, &o, err, errlen) < 0)
            return -1;
    }
    while (i < *argc)
        argv[out++] = argv[i++];
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* ---- cross-field checks ---- */

__attribute__((format(printf, 4, 5))) static int vfail(const struct dpn_config *cfg, char *err,
                                                       size_t errlen, const char *fmt, ...) {
    char msg[WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(err, errlen, "%s%s%s", cfg->source, cfg->source[0] ? ": " : "", msg);
}

int dpn_config_validate(const struct dpn_config *cfg, char *err, size_t errlen) {
    char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], net[INET_ADDRSTRLEN];
    uint32_t m = mask_of(cfg->prefix_len);
    if (cfg->capture[0] == '\0' && (cfg->capture_filter[0] != '\0' || cfg->capture_snaplen != 0))
        return vfail(cfg, err, errlen,
                     "capture.filter and capture.snaplen need capture.file (--capture FILE)");
    if (cfg->attached && cfg->capture[0] != '\0')
        return vfail(cfg, err, errlen,
                     "an attached worker is captured by dpnetd: run dpnetctl capture instead of "
                     "--capture");
    if (cfg->attached) {
        if (cfg->ip_set || cfg->gateway != 0 || cfg->mac_set || cfg->device[0] != '\0')
            return vfail(cfg, err, errlen,
                         "an attached worker gets its port and addresses from dpnetd: "
                         "drop ip.*, port.device and --ip/--gw/--mac/--dev");
        return 0;
    }
    if (!cfg->ip_set)
        return vfail(cfg, err, errlen,
                     "no IP address: set ip.address in the config file or pass --ip ADDR/LEN");
    ip_str(cfg->ip, ip);
    ip_str(cfg->gateway, gw);
    ip_str(cfg->ip & m, net);
    if (cfg->gateway != 0 && (cfg->gateway & m) != (cfg->ip & m))
        return vfail(cfg, err, errlen, "ip.gateway %s is outside the subnet %s/%u of address %s",
                     gw, net, (unsigned)cfg->prefix_len, ip);
    if (cfg->gateway != 0 && cfg->gateway == cfg->ip)
        return vfail(cfg, err, errlen, "ip.gateway %s must differ from the host's own address", gw);
    /* DPDK refuses a pool whose cache flush threshold, (int)(1.5 * cache), exceeds its size. */
    if ((uint64_t)cfg->mbuf_cache * 3 / 2 > cfg->mbufs)
        return vfail(cfg, err, errlen,
                     "pools.mbuf_cache %u is too large for pools.mbufs %u: "
                     "must be at most mbufs / 1.5 = %u",
                     cfg->mbuf_cache, cfg->mbufs, (unsigned)(((uint64_t)cfg->mbufs * 2 + 1) / 3));
    return 0;
}
