/* Unit tests for stack/config.c: defaults, parsers, file loading (every error path must name
 * the file, the line and the key), command-line overrides and cross-field validation. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERRLEN 512

/* Temp files written by a test; removed by the teardown fixture. */
static char tmp_paths[4][64];
static int ntmp;

static const char *write_cfg(const char *text) {
    ck_assert_int_lt(ntmp, 4);
    char *path = tmp_paths[ntmp++];
    strcpy(path, "/tmp/dpn_test_cfg_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void cleanup(void) {
    for (int i = 0; i < ntmp; i++)
        unlink(tmp_paths[i]);
    ntmp = 0;
}

/* Defaults, then the text as a file. Returns dpn_config_load's result; *path gets the name. */
static int load_text(struct dpn_config *cfg, const char *text, const char **path, char *err) {
    const char *p = write_cfg(text);
    if (path)
        *path = p;
    dpn_config_defaults(cfg);
    err[0] = '\0';
    return dpn_config_load(cfg, p, err, ERRLEN);
}

/* err must be one line starting "PATH:LINE: key 'KEY': " and containing what. */
static void check_key_err(const char *err, const char *path, int line, const char *key,
                          const char *what) {
    char want[256];
    snprintf(want, sizeof want, "%s:%d: key '%s': ", path, line, key);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error '%s' does not start with '%s'", err,
                  want);
    ck_assert_msg(strstr(err, what) != NULL, "error '%s' does not contain '%s'", err, what);
    ck_assert_ptr_null(strchr(err, '\n'));
}

/* ---- defaults ---- */

START_TEST(test_defaults) {
    struct dpn_config c;
    memset(&c, 0xa5, sizeof c); /* defaults must not depend on the prior contents */
    dpn_config_defaults(&c);
    ck_assert_str_eq(c.source, "");
    ck_assert_int_eq(c.eal_argc, 0);
    ck_assert_str_eq(c.device, "");
    ck_assert_uint_eq(c.mtu, 1500);
    ck_assert_uint_eq(c.rx_desc, 1024);
    ck_assert_uint_eq(c.tx_desc, 1024);
    ck_assert_uint_eq(c.syn_guard, 1);
    ck_assert(!c.ip_set);
    ck_assert_uint_eq(c.ip, 0);
    ck_assert_uint_eq(c.prefix_len, 0);
    ck_assert_uint_eq(c.gateway, 0);
    ck_assert(!c.mac_set);
    ck_assert_int_eq(c.poll, DPN_POLL_HYBRID);
    ck_assert_uint_eq(c.spin_us, 50);
    ck_assert_uint_eq(c.sleep_max_us, 1000);
    ck_assert_uint_eq(c.mbufs, 16383);
    ck_assert_uint_eq(c.mbuf_cache, 256);
    ck_assert_uint_eq(c.tcp_sndbuf, 262144);
    ck_assert_uint_eq(c.tcp_rcvbuf, 262144);
    ck_assert(c.standalone);
}
END_TEST

/* ---- parsers ---- */

START_TEST(test_parse_ipv4) {
    uint32_t ip = 7;
    ck_assert_int_eq(dpn_parse_ipv4("10.0.0.2", &ip), 0);
    ck_assert_uint_eq(ip, 0x0a000002u);
    ck_assert_int_eq(dpn_parse_ipv4("255.255.255.255", &ip), 0);
    ck_assert_uint_eq(ip, 0xffffffffu);
    ck_assert_int_eq(dpn_parse_ipv4("0.0.0.0", &ip), 0);
    ck_assert_uint_eq(ip, 0);
    const char *bad[] = {"",         "1.2.3",     "1.2.3.4.5", "256.1.1.1", "1.2.3.4x", " 1.2.3.4",
                         "1.2.3.4 ", "0x1.2.3.4", "1..2.3",    "a.b.c.d",   "1.2.3.-4", "10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ip = 7;
        ck_assert_msg(dpn_parse_ipv4(bad[i], &ip) == -1, "accepted '%s'", bad[i]);
        ck_assert_uint_eq(ip, 7);
    }
    ck_assert_int_eq(dpn_parse_ipv4(NULL, &ip), -1);
}
END_TEST

START_TEST(test_parse_cidr) {
    uint32_t ip;
    uint8_t len;
    ck_assert_int_eq(dpn_parse_cidr("10.0.0.2/24", &ip, &len), 0);
    ck_assert_uint_eq(ip, 0x0a000002u);
    ck_assert_uint_eq(len, 24);
    ck_assert_int_eq(dpn_parse_cidr("192.168.1.7/32", &ip, &len), 0);
    ck_assert_uint_eq(len, 32);
    ck_assert_int_eq(dpn_parse_cidr("1.2.3.4/1", &ip, &len), 0);
    ck_assert_uint_eq(len, 1);
    const char *bad[] = {"10.0.0.2",     "10.0.0.2/",    "10.0.0.2/0",   "10.0.0.2/33",
                         "10.0.0.2/24x", "10.0.0.2/+24", "10.0.0.2/-1",  "10.0.0/24",
                         "/24",          "10.0.0.2/2/4", "10.0.0.2 /24", "1234567890123456789/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dpn_parse_cidr(bad[i], &ip, &len) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_parse_mac) {
    uint8_t mac[6];
    const uint8_t want[6] = {0x02, 0x00, 0xab, 0xCD, 0xef, 0x01};
    ck_assert_int_eq(dpn_parse_mac("02:00:ab:CD:Ef:01", mac), 0);
    ck_assert_mem_eq(mac, want, 6);
    const char *bad[] = {"",
                         "02:00:00:00:00",
                         "02:00:00:00:00:01:02",
                         "02-00-00-00-00-01",
                         "2:0:0:0:0:1",
                         "02:00:00:00:00:0g",
                         "02:00:00:00:00:01 ",
                         "020000000001",
                         "02:00:00:00:00::1",
                         "+2:00:00:00:00:01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(mac, 0x77, sizeof mac);
        ck_assert_msg(dpn_parse_mac(bad[i], mac) == -1, "accepted '%s'", bad[i]);
        ck_assert_uint_eq(mac[0], 0x77); /* untouched on failure */
    }
}
END_TEST

START_TEST(test_parse_u32) {
    uint32_t v = 0;
    ck_assert_int_eq(dpn_parse_u32("0", 0, 10, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(dpn_parse_u32("10", 0, 10, &v), 0);
    ck_assert_uint_eq(v, 10);
    ck_assert_int_eq(dpn_parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT32_MAX);
    ck_assert_int_eq(dpn_parse_u32("007", 0, 10, &v), 0);
    ck_assert_uint_eq(v, 7);
    const char *bad[] = {"",   "-1",   "+1",  " 1",         "1 ",
                         "1x", "0x10", "1.0", "4294967296", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        ck_assert_msg(dpn_parse_u32(bad[i], 0, UINT32_MAX, &v) == -1, "accepted '%s'", bad[i]);
        ck_assert_uint_eq(v, 42);
    }
    ck_assert_int_eq(dpn_parse_u32("11", 0, 10, &v), -1);
    ck_assert_int_eq(dpn_parse_u32("4", 5, 10, &v), -1);
    ck_assert_int_eq(dpn_parse_u32(NULL, 0, 10, &v), -1);
}
END_TEST

START_TEST(test_poll_mode_name) {
    ck_assert_str_eq(dpn_poll_mode_name(DPN_POLL_BUSY), "busy");
    ck_assert_str_eq(dpn_poll_mode_name(DPN_POLL_HYBRID), "hybrid");
    ck_assert_str_eq(dpn_poll_mode_name(DPN_POLL_INTERRUPT), "interrupt");
    ck_assert_ptr_nonnull(dpn_poll_mode_name((enum dpn_poll_mode)42));
}
END_TEST

/* ---- loading valid files ---- */

static const char full_cfg[] = "# every key\n"
                               "eal = [\"--no-pci\", \"-l\", \"0\", \"--in-memory\"];\n"
                               "mode = \"standalone\";\n"
                               "port: { device = \"net_tap0,iface=dpn0\"; mtu = 9000;\n"
                               "        rx_desc = 512; tx_desc = 2048; };\n"
                               "ip: { address = \"10.1.2.3/16\"; gateway = \"10.1.0.1\";\n"
                               "      mac = \"02:00:00:00:00:01\"; };\n"
                               "poll: { mode = \"interrupt\"; spin_us = 0; sleep_max_us = 500; };\n"
                               "pools: { mbufs = 8191; mbuf_cache = 128; };\n"
                               "tcp: { sndbuf = 65536; rcvbuf = 131072; };\n";

START_TEST(test_load_full) {
    struct dpn_config c;
    char err[ERRLEN];
    const char *path;
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    ck_assert_msg(load_text(&c, full_cfg, &path, err) == 0, "%s", err);
    ck_assert_str_eq(c.source, path);
    ck_assert_int_eq(c.eal_argc, 4);
    ck_assert_str_eq(c.eal_argv[0], "--no-pci");
    ck_assert_str_eq(c.eal_argv[1], "-l");
    ck_assert_str_eq(c.eal_argv[2], "0");
    ck_assert_str_eq(c.eal_argv[3], "--in-memory");
    ck_assert(c.standalone);
    ck_assert_str_eq(c.device, "net_tap0,iface=dpn0");
    ck_assert_uint_eq(c.mtu, 9000);
    ck_assert_uint_eq(c.rx_desc, 512);
    ck_assert_uint_eq(c.tx_desc, 2048);
    ck_assert(c.ip_set);
    ck_assert_uint_eq(c.ip, 0x0a010203u);
    ck_assert_uint_eq(c.prefix_len, 16);
    ck_assert_uint_eq(c.gateway, 0x0a010001u);
    ck_assert(c.mac_set);
    ck_assert_mem_eq(c.mac, mac, 6);
    ck_assert_int_eq(c.poll, DPN_POLL_INTERRUPT);
    ck_assert_uint_eq(c.spin_us, 0);
    ck_assert_uint_eq(c.sleep_max_us, 500);
    ck_assert_uint_eq(c.mbufs, 8191);
    ck_assert_uint_eq(c.mbuf_cache, 128);
    ck_assert_uint_eq(c.tcp_sndbuf, 65536);
    ck_assert_uint_eq(c.tcp_rcvbuf, 131072);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
}
END_TEST

START_TEST(test_load_empty_keeps_defaults) {
    struct dpn_config c, d;
    char err[ERRLEN];
    const char *path;
    ck_assert_int_eq(load_text(&c, "# nothing\n", &path, err), 0);
    ck_assert_str_eq(c.source, path);
    dpn_config_defaults(&d);
    strcpy(d.source, path);
    ck_assert_mem_eq(&c, &d, sizeof c);
}
END_TEST

START_TEST(test_load_partial_and_variants) {
    struct dpn_config c;
    char err[ERRLEN];
    /* list syntax for eal, int64 values, busy mode, boundary values, /31 and /32 hosts */
    ck_assert_msg(load_text(&c,
                            "eal = (\"-l\", \"1\");\n"
                            "pools = { mbufs = 1048576L; mbuf_cache = 0; };\n"
                            "port: { mtu = 68; rx_desc = 64; tx_desc = 4096; };\n"
                            "poll: { mode = \"busy\"; spin_us = 1000000; sleep_max_us = 1; };\n"
                            "tcp: { sndbuf = 2920; rcvbuf = 524288; };\n"
                            "ip: { address = \"10.0.0.0/31\"; };\n",
                            NULL, err) == 0,
                  "%s", err);
    ck_assert_int_eq(c.eal_argc, 2);
    ck_assert_str_eq(c.eal_argv[1], "1");
    ck_assert_uint_eq(c.mbufs, 1048576);
    ck_assert_uint_eq(c.mbuf_cache, 0);
    ck_assert_uint_eq(c.mtu, 68);
    ck_assert_uint_eq(c.rx_desc, 64);
    ck_assert_uint_eq(c.tx_desc, 4096);
    ck_assert_int_eq(c.poll, DPN_POLL_BUSY);
    ck_assert_uint_eq(c.spin_us, 1000000);
    ck_assert_uint_eq(c.sleep_max_us, 1);
    ck_assert_uint_eq(c.tcp_sndbuf, 2920);
    ck_assert_uint_eq(c.tcp_rcvbuf, 524288);
    ck_assert_uint_eq(c.ip, 0x0a000000u);
    ck_assert_uint_eq(c.prefix_len, 31);
    ck_assert_uint_eq(c.tx_desc, 4096);
    ck_assert_int_eq(load_text(&c, "ip: { address = \"10.0.0.255/32\"; };\n", NULL, err), 0);
    ck_assert_uint_eq(c.prefix_len, 32);
    ck_assert_int_eq(load_text(&c, "eal = [];\n", NULL, err), 0);
    ck_assert_int_eq(c.eal_argc, 0);
}
END_TEST

START_TEST(test_load_64_eal_args) {
    struct dpn_config c;
    char err[ERRLEN], text[2048] = "eal = [";
    for (int i = 0; i < DPN_CFG_MAX_EAL_ARGS; i++)
        strcat(text, i ? ", \"x\"" : "\"x\"");
    strcat(text, "];\n");
    ck_assert_msg(load_text(&c, text, NULL, err) == 0, "%s", err);
    ck_assert_int_eq(c.eal_argc, DPN_CFG_MAX_EAL_ARGS);
}
END_TEST

/* ---- loading invalid files: file name, line and key in every message ---- */

struct bad_case {
    const char *text;
    int line;
    const char *key, *what;
};

static const struct bad_case bad_cases[] = {
    /* unknown keys */
    {"mode = \"standalone\";\n\nspeed = 10;\n", 3, "speed", "unknown key (allowed: eal mode"},
    {"port: {\n  mtu = 1500;\n  speed = 10;\n};\n", 3, "port.speed",
     "allowed: device mtu rx_desc tx_desc"},
    {"ip: { address = \"10.0.0.2/24\";\n extra: { a = 1; }; };\n", 2, "ip.extra", "unknown key"},
    {"poll: { Mode = \"busy\"; };\n", 1, "poll.Mode", "allowed: mode spin_us sleep_max_us"},
    {"pools: { buffers = 2048; };\n", 1, "pools.buffers", "allowed: mbufs mbuf_cache"},
    {"tcp: { wnd = 2048; };\n", 1, "tcp.wnd", "allowed: sndbuf rcvbuf"},
    /* wrong types */
    {"port = 5;\n", 1, "port", "must be a group"},
    {"\nport: { mtu = \"1500\"; };\n", 2, "port.mtu",
     "must be an integer in 68..9000, not a string"},
    {"pools: {\n mbufs = 2048.0; };\n", 2, "pools.mbufs", "not a float"},
    {"port: { rx_desc = true; };\n", 1, "port.rx_desc", "power of two in 64..4096, not a boolean"},
    {"ip: { address = 10; };\n", 1, "ip.address", "must be a string (ADDR/LEN"},
    {"poll: { mode = 1; };\n", 1, "poll.mode", "busy, hybrid or interrupt"},
    {"port: { device = [\"a\"]; };\n", 1, "port.device", "must be a string"},
    {"mode = 1;\n", 1, "mode", "must be \"standalone\" or \"attached\", not an integer"},
    {"eal = \"--no-pci\";\n", 1, "eal", "must be a list of strings"},
    {"eal = (\"-l\",\n 0);\n", 2, "eal[1]", "must be a string"},
    /* ranges */
    {"port: { mtu = 67; };\n", 1, "port.mtu", "68..9000, not 67"},
    {"port: { mtu = 9001; };\n", 1, "port.mtu", "68..9000, not 9001"},
    {"port: { mtu = -1; };\n", 1, "port.mtu", "not -1"},
    {"port: { mtu = 4295000000L; };\n", 1, "port.mtu", "not 4295000000"},
    {"port: { rx_desc = 100; };\n", 1, "port.rx_desc", "power of two in 64..4096, not 100"},
    {"port: { rx_desc = 32; };\n", 1, "port.rx_desc", "not 32"},
    {"port: { tx_desc = 8192; };\n", 1, "port.tx_desc", "not 8192"},
    {"port: { tx_desc = 0; };\n", 1, "port.tx_desc", "not 0"},
    {"poll: { spin_us = 1000001; };\n", 1, "poll.spin_us", "0..1000000"},
    {"poll: { sleep_max_us = 0; };\n", 1, "poll.sleep_max_us", "1..1000000, not 0"},
    {"poll: { sleep_max_us = 1000001; };\n", 1, "poll.sleep_max_us", "not 1000001"},
    {"pools: { mbufs = 1023; };\n", 1, "pools.mbufs", "1024..1048576, not 1023"},
    {"pools: { mbufs = 1048577; };\n", 1, "pools.mbufs", "not 1048577"},
    {"pools: { mbuf_cache = 513; };\n", 1, "pools.mbuf_cache", "0..512, not 513"},
    {"tcp: { sndbuf = 2919; };\n", 1, "tcp.sndbuf", "2920..524288, not 2919"},
    {"tcp: { rcvbuf = 524289; };\n", 1, "tcp.rcvbuf", "2920..524288, not 524289"},
    /* strings */
    {"port: { device = \"\"; };\n", 1, "port.device", "non-empty"},
    {"ip: { address = \"10.0.0.2\"; };\n", 1, "ip.address", "LEN 1..32"},
    {"ip: { address = \"10.0.0.2/33\"; };\n", 1, "ip.address", "not \"10.0.0.2/33\""},
    {"ip: { address = \"10.0.0.2/0\"; };\n", 1, "ip.address", "LEN 1..32"},
    {"ip: { address = \"10.0.0.256/24\"; };\n", 1, "ip.address", "like 10.0.0.2/24"},
    {"ip: { address = \"0.0.0.0/8\"; };\n", 1, "ip.address", "must not be 0.0.0.0"},
    {"ip: { address = \"224.0.0.1/24\"; };\n", 1, "ip.address", "multicast"},
    {"ip: { address = \"239.255.255.250/8\"; };\n", 1, "ip.address", "multicast"},
    {"ip: { address = \"255.255.255.255/32\"; };\n", 1, "ip.address", "broadcast"},
    {"ip: { address = \"10.0.0.0/24\"; };\n", 1, "ip.address", "network address of 10.0.0.0/24"},
    {"ip: { address = \"10.0.0.255/24\"; };\n", 1, "ip.address",
     "broadcast address of 10.0.0.0/24"},
    {"ip: { address = \"10.0.3.255/22\"; };\n", 1, "ip.address",
     "broadcast address of 10.0.0.0/22"},
    {"ip: { address = \"10.0.0.4/30\"; };\n", 1, "ip.address", "network address of 10.0.0.4/30"},
    {"ip: { gateway = \"10.0.0\"; };\n", 1, "ip.gateway", "IPv4 address"},
    {"ip: { gateway = \"10.0.0.1/24\"; };\n", 1, "ip.gateway", "IPv4 address"},
    {"ip: { gateway = \"0.0.0.0\"; };\n", 1, "ip.gateway", "0.0.0.0"},
    {"ip: { gateway = \"255.255.255.255\"; };\n", 1, "ip.gateway", "broadcast"},
    {"ip: { mac = \"02:00:00:00:00\"; };\n", 1, "ip.mac", "six hex pairs"},
    {"ip: { mac = \"01:00:5e:00:00:01\"; };\n", 1, "ip.mac", "unicast"},
    {"ip: { mac = \"00:00:00:00:00:00\"; };\n", 1, "ip.mac", "unicast"},
    {"poll: { mode = \"fast\"; };\n", 1, "poll.mode", "must be busy, hybrid or interrupt"},
    {"daemon: { queues = 1; };\n", 1, "daemon.queues", "2..16"},
    {"fault: { spec = \"drop=2\"; };\n", 1, "fault.spec", "probability 0..1"},
    {"fault: { spec = \"drop\"; };\n", 1, "fault.spec", "not key=value"},
    {"fault: { spec = \"jitter=5\"; };\n", 1, "fault.spec", "unknown fault"},
    {"fault: { spec = \"down=5\"; };\n", 1, "fault.spec", "AT_MS:FOR_MS"},
    {"fault: { spec = \"dir=up\"; };\n", 1, "fault.spec", "rx, tx or both"},
    {"daemon: { exception = \"tap:bad name\"; };\n", 1, "daemon.exception", "tap:IFNAME"},
    {"daemon: { steering = \"fast\"; };\n", 1, "daemon.steering",
     "auto, kernel, hardware or software"},
    {"worker: { app = \"a b\"; };\n", 1, "worker.app", "letters, digits"},
    {"mode = \"shared\";\n", 1, "mode", "must be \"standalone\" or \"attached\", not \"shared\""},
};
#define N_BAD (int)(sizeof bad_cases / sizeof bad_cases[0])

START_TEST(test_load_bad) {
    const struct bad_case *b = &bad_cases[_i];
    struct dpn_config c;
    char err[ERRLEN];
    const char *path;
    ck_assert_msg(load_text(&c, b->text, &path, err) == -1, "case %d accepted: %s", _i, b->text);
    check_key_err(err, path, b->line, b->key, b->what);
}
END_TEST

START_TEST(test_load_poll_mode_exact_message) {
    struct dpn_config c;
    char err[ERRLEN], want[ERRLEN];
    const char *path;
    ck_assert_int_eq(load_text(&c, "# c\n\n\n\n\n\npoll: { mode = \"fast\"; };\n", &path, err), -1);
    snprintf(want, sizeof want,
             "%s:7: key 'poll.mode': must be busy, hybrid or interrupt, not \"fast\"", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_load_too_many_eal_args) {
    struct dpn_config c;
    char err[ERRLEN], text[2048] = "\neal = [";
    const char *path;
    for (int i = 0; i <= DPN_CFG_MAX_EAL_ARGS; i++)
        strcat(text, i ? ", \"x\"" : "\"x\"");
    strcat(text, "];\n");
    ck_assert_int_eq(load_text(&c, text, &path, err), -1);
    check_key_err(err, path, 2, "eal", "at most 64 arguments, not 65");
}
END_TEST

START_TEST(test_load_eal_arg_too_long) {
    struct dpn_config c;
    char err[ERRLEN], text[1024] = "eal = [\"-l\", \"0\",\n\"";
    const char *path;
    memset(text + strlen(text), 'a', DPN_CFG_STR);
    strcpy(text + strlen(text), "\"];\n");
    ck_assert_int_eq(load_text(&c, text, &path, err), -1);
    check_key_err(err, path, 2, "eal[2]", "shorter than 256");
}
END_TEST

START_TEST(test_load_device_too_long) {
    struct dpn_config c;
    char err[ERRLEN], text[1024] = "port: {\n device = \"";
    const char *path;
    memset(text + strlen(text), 'd', DPN_CFG_STR);
    strcpy(text + strlen(text), "\"; };\n");
    ck_assert_int_eq(load_text(&c, text, &path, err), -1);
    check_key_err(err, path, 2, "port.device", "shorter than 256");
    ck_assert_int_lt(strlen(err), 400); /* the value is not echoed in full */
}
END_TEST

START_TEST(test_load_one_line_message) {
    struct dpn_config c;
    char err[ERRLEN];
    const char *path;
    ck_assert_int_eq(load_text(&c, "poll: { mode = \"fa\\nst\\r\"; };\n", &path, err), -1);
    check_key_err(err, path, 1, "poll.mode", "not \"fa st \"");
    ck_assert_ptr_null(strchr(err, '\r'));
}
END_TEST

START_TEST(test_load_syntax_error) {
    struct dpn_config c;
    char err[ERRLEN], want[256];
    const char *path;
    ck_assert_int_eq(load_text(&c, "mode = \"standalone\";\n\nport: { mtu = ; };\n", &path, err),
                     -1);
    snprintf(want, sizeof want, "%s:3: syntax error: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    /* a duplicate key is reported by libconfig as a parse error too */
    ck_assert_int_eq(load_text(&c, "tcp: { sndbuf = 4096;\n sndbuf = 8192; };\n", &path, err), -1);
    snprintf(want, sizeof want, "%s:2: syntax error: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);
}
END_TEST

START_TEST(test_load_missing_file) {
    struct dpn_config c;
    char err[ERRLEN];
    const char *path = "/tmp/dpn-test-no-such-dir/none.conf";
    dpn_config_defaults(&c);
    ck_assert_int_eq(dpn_config_load(&c, path, err, ERRLEN), -1);
    ck_assert_str_eq(err, "/tmp/dpn-test-no-such-dir/none.conf: cannot read: No such file or "
                          "directory");
    ck_assert_str_eq(c.source, path);
    ck_assert_int_eq(dpn_config_load(&c, "/tmp", err, ERRLEN), -1);
    ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}
END_TEST

START_TEST(test_load_small_err_buffer) {
    struct dpn_config c;
    char err[16];
    memset(err, 'x', sizeof err);
    dpn_config_defaults(&c);
    ck_assert_int_eq(dpn_config_load(&c, "/tmp/dpn-test-no-such-dir/x", err, 8), -1);
    ck_assert_str_eq(err, "/tmp/dp");
    ck_assert_int_eq(err[8], 'x');
    ck_assert_int_eq(dpn_config_load(&c, "/tmp/dpn-test-no-such-dir/x", NULL, 0), -1);
}
END_TEST

START_TEST(test_load_over_existing) {
    /* a second file overrides only the keys it names */
    struct dpn_config c;
    char err[ERRLEN];
    ck_assert_int_eq(load_text(&c, "port: { mtu = 9000; };\n", NULL, err), 0);
    const char *p2 = write_cfg("poll: { mode = \"busy\"; };\n");
    ck_assert_int_eq(dpn_config_load(&c, p2, err, ERRLEN), 0);
    ck_assert_uint_eq(c.mtu, 9000);
    ck_assert_int_eq(c.poll, DPN_POLL_BUSY);
    ck_assert_str_eq(c.source, p2);
}
END_TEST

/* ---- command line ---- */

/* Runs parse_args on a copy of args (NULL-terminated, argv[0] included). */
struct args {
    int argc;
    char *argv[32];
};

static int parse(struct dpn_config *c, struct args *a, const char *const *args, char *err) {
    a->argc = 0;
    while (args[a->argc] != NULL) {
        a->argv[a->argc] = (char *)args[a->argc];
        a->argc++;
    }
    a->argv[a->argc] = (char *)"sentinel"; /* parse_args must NULL-terminate */
    err[0] = '\0';
    return dpn_config_parse_args(c, &a->argc, a->argv, err, ERRLEN);
}

static void check_argv(const struct args *a, const char *const *want) {
    int n = 0;
    while (want[n] != NULL) {
        ck_assert_int_lt(n, a->argc);
        ck_assert_str_eq(a->argv[n], want[n]);
        n++;
    }
    ck_assert_int_eq(a->argc, n);
    ck_assert_ptr_null(a->argv[n]);
}

START_TEST(test_args_basic) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *in[] = {"prog", "--port", "7", "--ip", "10.0.0.2/24", "-v", NULL};
    const char *out[] = {"prog", "--port", "7", "-v", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert(c.ip_set);
    ck_assert_uint_eq(c.ip, 0x0a000002u);
    ck_assert_uint_eq(c.prefix_len, 24);
    ck_assert_str_eq(c.source, "");
}
END_TEST

/* --quiet is a flag; capture options need a file and a standalone worker. */
START_TEST(test_args_quiet_capture) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *in[] = {
        "prog",        "--quiet",           "--capture", "/tmp/x.pcapng", "--capture-filter",
        "tcp port 80", "--capture-snaplen", "96",        "--ip",          "10.0.0.2/24",
        NULL};
    const char *out[] = {"prog", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert_uint_eq(c.quiet, 1);
    ck_assert_str_eq(c.capture, "/tmp/x.pcapng");
    ck_assert_str_eq(c.capture_filter, "tcp port 80");
    ck_assert_uint_eq(c.capture_snaplen, 96);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
    c.attached = true; /* attached: dpnetctl capture, not --capture */
    c.ip_set = false;
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_msg(strstr(err, "dpnetctl capture") != NULL, "%s", err);
    const char *in2[] = {"prog", "--quiet=1", NULL};
    dpn_config_defaults(&c);
    ck_assert_int_eq(parse(&c, &a, in2, err), -1);
    ck_assert_msg(strstr(err, "takes no value") != NULL, "%s", err);
    const char *in3[] = {"prog", "--capture-filter", "tcp", "--ip", "10.0.0.2/24", NULL};
    dpn_config_defaults(&c);
    ck_assert_int_eq(parse(&c, &a, in3, err), 0);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_msg(strstr(err, "need capture.file") != NULL, "%s", err);
    const char *in4[] = {"prog", "--capture-snaplen", "20000", NULL};
    dpn_config_defaults(&c);
    ck_assert_int_eq(parse(&c, &a, in4, err), -1);
}
END_TEST

START_TEST(test_args_all_options) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const char *in[] = {"prog",
                        "--ip",
                        "192.168.7.9/24",
                        "--gw",
                        "192.168.7.1",
                        "--mac",
                        "02:11:22:33:44:55",
                        "--dev",
                        "net_null0",
                        "--poll",
                        "busy",
                        "--spin-us",
                        "0",
                        "--mtu",
                        "1400",
                        "--standalone",
                        NULL};
    const char *out[] = {"prog", NULL};
    dpn_config_defaults(&c);
    c.standalone = false;
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert_uint_eq(c.ip, 0xc0a80709u);
    ck_assert_uint_eq(c.gateway, 0xc0a80701u);
    ck_assert(c.mac_set);
    ck_assert_mem_eq(c.mac, mac, 6);
    ck_assert_str_eq(c.device, "net_null0");
    ck_assert_int_eq(c.poll, DPN_POLL_BUSY);
    ck_assert_uint_eq(c.spin_us, 0);
    ck_assert_uint_eq(c.mtu, 1400);
    ck_assert(c.standalone);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
}
END_TEST

START_TEST(test_args_equals_form) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *path = write_cfg("tcp: { sndbuf = 4096; };\n");
    char cfgopt[128];
    snprintf(cfgopt, sizeof cfgopt, "--config=%s", path);
    const char *in[] = {"prog",
                        "--ip=10.9.8.7/8",
                        "--gw=10.0.0.1",
                        "--mac=02:00:00:00:00:09",
                        "--dev=net_tap0,iface=x",
                        "--poll=interrupt",
                        "--spin-us=7",
                        "--mtu=9000",
                        cfgopt,
                        "app",
                        NULL};
    const char *out[] = {"prog", "app", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert_uint_eq(c.ip, 0x0a090807u);
    ck_assert_uint_eq(c.prefix_len, 8);
    ck_assert_uint_eq(c.gateway, 0x0a000001u);
    ck_assert_uint_eq(c.mac[5], 9);
    ck_assert_str_eq(c.device, "net_tap0,iface=x");
    ck_assert_int_eq(c.poll, DPN_POLL_INTERRUPT);
    ck_assert_uint_eq(c.spin_us, 7);
    ck_assert_uint_eq(c.mtu, 9000);
    ck_assert_uint_eq(c.tcp_sndbuf, 4096);
    ck_assert_str_eq(c.source, path);
}
END_TEST

START_TEST(test_args_file_first_whatever_the_order) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *path = write_cfg("port: { mtu = 9000; device = \"net_tap0\"; };\n"
                                 "poll: { mode = \"busy\"; spin_us = 10; };\n"
                                 "ip: { address = \"10.0.0.2/24\"; };\n");
    /* -c last: the file must still be loaded before --mtu/--poll are applied */
    const char *in[] = {"prog", "--mtu", "1400", "-x", "--poll=hybrid", "-c", path, NULL};
    const char *out[] = {"prog", "-x", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert_uint_eq(c.mtu, 1400);            /* command line wins */
    ck_assert_int_eq(c.poll, DPN_POLL_HYBRID); /* command line wins */
    ck_assert_uint_eq(c.spin_us, 10);          /* from the file */
    ck_assert_str_eq(c.device, "net_tap0");    /* from the file */
    ck_assert_uint_eq(c.ip, 0x0a000002u);      /* from the file */
    ck_assert_str_eq(c.source, path);

    /* same with -c first and --config in the long form */
    const char *in2[] = {"prog", "--config", path, "--mtu", "1500", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in2, err) == 0, "%s", err);
    ck_assert_uint_eq(c.mtu, 1500);
    ck_assert_int_eq(c.poll, DPN_POLL_BUSY);
    ck_assert_int_eq(a.argc, 1);
}
END_TEST

START_TEST(test_args_two_config_files) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *p1 = write_cfg("port: { mtu = 9000; rx_desc = 256; };\n");
    const char *p2 = write_cfg("port: { mtu = 2000; };\n");
    const char *in[] = {"prog", "-c", p1, "-c", p2, NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    ck_assert_uint_eq(c.mtu, 2000);
    ck_assert_uint_eq(c.rx_desc, 256);
    ck_assert_int_eq(a.argc, 1);
}
END_TEST

START_TEST(test_args_unknown_kept_in_order) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *in[] = {"prog",      "a",     "--mtu", "2000", "--ipx", "1",
                        "-v",        "--m=5", "--dev", "net0", "b",     "-",
                        "--mtu-x=3", "--",    "--ip",  "junk", NULL};
    /* "--" ends our options: it and what follows belong to the application */
    const char *out[] = {"prog", "a",         "--ipx", "1",    "-v",   "--m=5", "b",
                         "-",    "--mtu-x=3", "--",    "--ip", "junk", NULL};
    dpn_config_defaults(&c);
    ck_assert_msg(parse(&c, &a, in, err) == 0, "%s", err);
    check_argv(&a, out);
    ck_assert_uint_eq(c.mtu, 2000);
    ck_assert_str_eq(c.device, "net0");
    ck_assert(!c.ip_set);
}
END_TEST

START_TEST(test_args_nothing_ours) {
    struct dpn_config c, d;
    struct args a;
    char err[ERRLEN];
    const char *in[] = {"prog", NULL};
    dpn_config_defaults(&c);
    d = c;
    ck_assert_int_eq(parse(&c, &a, in, err), 0);
    check_argv(&a, in);
    ck_assert_mem_eq(&c, &d, sizeof c);
}
END_TEST

struct arg_err {
    const char *args[4];
    const char *want; /* exact message, or prefix if it ends with "..." */
};

static const struct arg_err arg_errs[] = {
    {{"--ip"}, "option '--ip': needs a value"},
    {{"-c"}, "option '-c': needs a value"},
    {{"--config"}, "option '--config': needs a value"},
    {{"--ip", "--mtu", "1500"}, "option '--ip': needs a value"},
    {{"--spin-us", "-1"}, "option '--spin-us': needs a value"},
    {{"--gw"}, "option '--gw': needs a value"},
    {{"--ip", "10.0.0.2"},
     "option '--ip': must be ADDR/LEN with LEN 1..32, like 10.0.0.2/24, not "
     "\"10.0.0.2\""},
    {{"--ip=10.0.0.0/24"}, "option '--ip': \"10.0.0.0/24\" is the network address of..."},
    {{"--gw", "10.0.0"}, "option '--gw': must be an IPv4 address..."},
    {{"--mac", "02:00:00"}, "option '--mac': must be six hex pairs..."},
    {{"--dev="}, "option '--dev': must be a non-empty DPDK device name..."},
    {{"--poll", "fast"}, "option '--poll': must be busy, hybrid or interrupt, not \"fast\""},
    {{"--mtu", "70000"}, "option '--mtu': must be an integer in 68..9000, not 70000"},
    {{"--mtu=abc"}, "option '--mtu': must be an integer in 68..9000, not \"abc\""},
    {{"--mtu", "99999999999"},
     "option '--mtu': must be an integer in 68..9000, not "
     "\"99999999999\""},
    {{"--spin-us", "1000001"},
     "option '--spin-us': must be an integer in 0..1000000, not "
     "1000001"},
    {{"--standalone=yes"}, "option '--standalone': takes no value"},
    {{"-c", "/tmp/dpn-test-no-such-dir/a.conf"},
     "/tmp/dpn-test-no-such-dir/a.conf: cannot read: No such file or directory"},
};
#define N_ARG_ERRS (int)(sizeof arg_errs / sizeof arg_errs[0])

START_TEST(test_args_bad) {
    const struct arg_err *e = &arg_errs[_i];
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *in[8] = {"prog"};
    for (int k = 0; k < 4 && e->args[k]; k++)
        in[k + 1] = e->args[k];
    dpn_config_defaults(&c);
    ck_assert_int_eq(parse(&c, &a, in, err), -1);
    size_t n = strlen(e->want);
    if (n > 3 && strcmp(e->want + n - 3, "...") == 0)
        ck_assert_msg(strncmp(err, e->want, n - 3) == 0, "got '%s' want '%s'", err, e->want);
    else
        ck_assert_str_eq(err, e->want);
}
END_TEST

START_TEST(test_args_bad_config_file) {
    struct dpn_config c;
    struct args a;
    char err[ERRLEN];
    const char *path = write_cfg("port: {\n mtu = 1; };\n");
    const char *in[] = {"prog", "--mtu", "1500", "--config", path, NULL};
    dpn_config_defaults(&c);
    ck_assert_int_eq(parse(&c, &a, in, err), -1);
    check_key_err(err, path, 2, "port.mtu", "68..9000, not 1");
}
END_TEST

/* ---- validate ---- */

static void valid_cfg(struct dpn_config *c) {
    dpn_config_defaults(c);
    c->ip_set = true;
    c->ip = 0x0a000002u; /* 10.0.0.2/24 */
    c->prefix_len = 24;
    c->gateway = 0x0a000001u;
}

START_TEST(test_validate_ok) {
    struct dpn_config c;
    char err[ERRLEN];
    valid_cfg(&c);
    ck_assert_msg(dpn_config_validate(&c, err, ERRLEN) == 0, "%s", err);
    c.gateway = 0; /* no gateway is fine */
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
    c.poll = DPN_POLL_INTERRUPT; /* spin_us is simply unused */
    c.spin_us = 1000;
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
}
END_TEST

START_TEST(test_validate_no_ip) {
    struct dpn_config c;
    char err[ERRLEN];
    dpn_config_defaults(&c);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "no IP address: set ip.address in the config file or pass --ip ADDR/LEN");
    strcpy(c.source, "host.conf");
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "host.conf: no IP address: set ip.address in the config file or pass "
                          "--ip ADDR/LEN");
}
END_TEST

START_TEST(test_validate_gateway) {
    struct dpn_config c;
    char err[ERRLEN];
    valid_cfg(&c);
    c.gateway = 0x0a000101u; /* 10.0.1.1 */
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "ip.gateway 10.0.1.1 is outside the subnet 10.0.0.0/24 of address "
                          "10.0.0.2");
    c.gateway = c.ip;
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_ptr_nonnull(strstr(err, "must differ from the host's own address"));
    c.prefix_len = 16;
    c.gateway = 0x0a00ff01u; /* 10.0.255.1 is inside 10.0.0.0/16 */
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), 0);
}
END_TEST

START_TEST(test_validate_gateway_from_file) {
    struct dpn_config c;
    char err[ERRLEN], want[256];
    const char *path;
    ck_assert_int_eq(load_text(&c,
                               "ip: { address = \"10.0.0.2/24\"; gateway = \"192.168.0.1\"; };\n",
                               &path, err),
                     0);
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    snprintf(want, sizeof want, "%s: ip.gateway 192.168.0.1 is outside the subnet", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);
}
END_TEST

START_TEST(test_validate_cache) {
    struct dpn_config c;
    char err[ERRLEN];
    valid_cfg(&c);
    c.mbufs = 1024;
    c.mbuf_cache = 683; /* 683 * 1.5 = 1024: DPDK's limit, just allowed */
    ck_assert_msg(dpn_config_validate(&c, err, ERRLEN) == 0, "%s", err);
    c.mbuf_cache = 684;
    ck_assert_int_eq(dpn_config_validate(&c, err, ERRLEN), -1);
    ck_assert_str_eq(err, "pools.mbuf_cache 684 is too large for pools.mbufs 1024: must be at most "
                          "mbufs / 1.5 = 683");
}
END_TEST

/* Every config file we ship loads and validates (an attached worker's
 * without addresses, the others with). */
static const char *const shipped[] = {"tap.conf",          "memif-server.conf", "memif-client.conf",
                                      "null.conf",         "ixgbe.conf",        "dpnetd-tap.conf",
                                      "dpnetd-ixgbe.conf", "worker.conf"};

START_TEST(test_shipped_configs) {
    const char *dir = getenv("DPN_CONFIG_DIR");
    char path[512], err[512];
    struct dpn_config c;
    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/%s", dir, shipped[_i]);
    dpn_config_defaults(&c);
    int rc = dpn_config_load(&c, path, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", path, err);
    c.attached = !c.standalone && strstr(shipped[_i], "dpnetd") == NULL;
    rc = dpn_config_validate(&c, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", path, err);
}
END_TEST

START_TEST(test_fault_spec) {
    struct dpn_fault_spec f;
    char err[256];
    ck_assert_int_eq(dpn_fault_parse("", &f, err, sizeof err), 0);
    ck_assert(!f.on);
    ck_assert_int_eq(dpn_fault_parse("drop=0.05,dup=0.01,reorder=0.5,corrupt=1,delay=200:500,"
                                     "down=300:2000,seed=7,dir=rx",
                                     &f, err, sizeof err),
                     0);
    ck_assert(f.on && f.rx && !f.tx);
    ck_assert(f.drop == 0.05 && f.dup == 0.01 && f.reorder == 0.5 && f.corrupt == 1);
    ck_assert_uint_eq(f.delay_us, 200);
    ck_assert_uint_eq(f.jitter_us, 200); /* jitter never exceeds the delay */
    ck_assert_uint_eq(f.down_at_ms, 300);
    ck_assert_uint_eq(f.down_for_ms, 2000);
    ck_assert_uint_eq(f.seed, 7);
    ck_assert_int_eq(dpn_fault_parse("seed=3", &f, err, sizeof err), 0);
    ck_assert(!f.on); /* a seed alone injects nothing */
}
END_TEST

START_TEST(test_steer_mode_name) {
    ck_assert_str_eq(dpn_steer_mode_name(DPN_STEER_AUTO), "auto");
    ck_assert_str_eq(dpn_steer_mode_name(DPN_STEER_HARDWARE), "hardware");
    ck_assert_str_eq(dpn_steer_mode_name(DPN_STEER_SOFTWARE), "software");
    ck_assert_str_eq(dpn_steer_mode_name(DPN_STEER_KERNEL), "kernel");
    ck_assert_str_eq(dpn_steer_mode_name((enum dpn_steer_mode)9), "unknown");
}
END_TEST

START_TEST(test_attached_refuses_addresses) {
    struct dpn_config c;
    char err[512];
    dpn_config_defaults(&c);
    c.attached = true;
    ck_assert_int_eq(dpn_config_validate(&c, err, sizeof err), 0);
    c.ip_set = true;
    ck_assert_int_eq(dpn_config_validate(&c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "gets its port and addresses from dpnetd"));
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *t;

    t = tcase_create("parsers");
    tcase_add_test(t, test_defaults);
    tcase_add_test(t, test_parse_ipv4);
    tcase_add_test(t, test_parse_cidr);
    tcase_add_test(t, test_parse_mac);
    tcase_add_test(t, test_parse_u32);
    tcase_add_test(t, test_poll_mode_name);
    suite_add_tcase(s, t);

    t = tcase_create("load");
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, test_load_full);
    tcase_add_test(t, test_load_empty_keeps_defaults);
    tcase_add_test(t, test_load_partial_and_variants);
    tcase_add_test(t, test_load_64_eal_args);
    tcase_add_loop_test(t, test_load_bad, 0, N_BAD);
    tcase_add_test(t, test_load_poll_mode_exact_message);
    tcase_add_test(t, test_load_too_many_eal_args);
    tcase_add_test(t, test_load_eal_arg_too_long);
    tcase_add_test(t, test_load_device_too_long);
    tcase_add_test(t, test_load_one_line_message);
    tcase_add_test(t, test_load_syntax_error);
    tcase_add_test(t, test_load_missing_file);
    tcase_add_test(t, test_load_small_err_buffer);
    tcase_add_test(t, test_load_over_existing);
    tcase_add_loop_test(t, test_shipped_configs, 0, (int)(sizeof shipped / sizeof shipped[0]));
    tcase_add_test(t, test_steer_mode_name);
    tcase_add_test(t, test_fault_spec);
    tcase_add_test(t, test_attached_refuses_addresses);
    suite_add_tcase(s, t);

    t = tcase_create("args");
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, test_args_basic);
    tcase_add_test(t, test_args_quiet_capture);
    tcase_add_test(t, test_args_all_options);
    tcase_add_test(t, test_args_equals_form);
    tcase_add_test(t, test_args_file_first_whatever_the_order);
    tcase_add_test(t, test_args_two_config_files);
    tcase_add_test(t, test_args_unknown_kept_in_order);
    tcase_add_test(t, test_args_nothing_ours);
    tcase_add_loop_test(t, test_args_bad, 0, N_ARG_ERRS);
    tcase_add_test(t, test_args_bad_config_file);
    suite_add_tcase(s, t);

    t = tcase_create("validate");
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, test_validate_ok);
    tcase_add_test(t, test_validate_no_ip);
    tcase_add_test(t, test_validate_gateway);
    tcase_add_test(t, test_validate_gateway_from_file);
    tcase_add_test(t, test_validate_cache);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
