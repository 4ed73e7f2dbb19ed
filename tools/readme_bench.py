#!/usr/bin/env python3
"""README's tables from a tools/bench.sh run: the summary table, cost vs
work and the issues' targets, written between the two marker lines in
README.md (everything between them is replaced; nothing else is touched).

    tools/readme_bench.py [--json bench/results/bench.json] [--readme README.md] [--check]

--check prints the block instead of writing it, and exits 1 when a target
is missed (or a figure it needs is missing)."""
import argparse
import json
import sys

import bench_report as br  # the same figures and formats as bench.md
from bench_report import f2, rate_fmt as rate, ratio as div, rfmt

BEGIN = "<!-- tools/readme_bench.py: begin (generated from bench/results/bench.json) -->"
END = "<!-- tools/readme_bench.py: end -->"


def trio(r):  # bench_report's, for a figure that may be absent
    return "-" if r is None else br.trio(r)


def rf(x, times=False):
    return "%.2fx" % x if times and x is not None else rfmt(x)


def block(j):
    r = j["results"]
    g = r.get
    L, rows = [], []

    def row(case, d, ref, rr):
        rows.append("| %s | %s | %s | %s |" % (case, d, ref, rr))

    # The host's placement before the cases with targets (--wait-near).
    spells = [(k[len("spell_"):], v) for k, v in r.items() if v["kind"] == "spell"]
    waited = sum(v.get("waited_s", 0) for _, v in spells)
    probes = [v["p50"] for k, v in spells if k != "end"]
    L.append("One `tools/bench.sh` run on the 2-core build machine (%s, median of %d runs per "
             "case; us, p50 / p99 / p99.9; `bench/results/` has every figure and the plots)%s:"
             % (j["generated"], j.get("runs_per_case", 3),
                "; cache-line round trip between the cores before the cases and runs %.0f-%.0f ns, "
                "%d s waited in all for the near placement" % (min(probes), max(probes), waited)
                if probes else ""))
    L.append("")
    L.append("| case | dpnet | Linux with blocking sockets, epoll (or the reference named) | dpnet/ref |")
    L.append("|---|---|---|---|")
    for p in ("tcp", "udp"):
        d, l, s = g(p + "64_dpnet"), g(p + "64_linux"), g(p + "64_sockperf")
        if d or l:
            row("%s 64 B RTT" % p.upper(), trio(d), "%s (sockperf: %s p50)" % (trio(l), f2((s or {}).get("p50"))),
                rf(div(d, l, "p50")))
    fl = g("udp64_floor")
    if fl:
        row("UDP 64 B vs the floor (testpmd 5tswap)", trio(g("udp64_dpnet")), trio(fl), rf(div(g("udp64_dpnet"), fl, "p50")))
        row("TCP 64 B vs the floor, each run right after a floor run", trio(g("tcp64_pair")), trio(fl),
            rf(div(g("tcp64_pair"), fl, "p50")))
    sizes = [s for s in (512, 1460, 4096, 16384) if g("size%d_dpnet" % s)]
    if sizes:
        rs = [div(g("size%d_dpnet" % s), g("size%d_linux" % s), "p50") for s in sizes]
        rs = [x for x in rs if x is not None]
        row("TCP %s B RTT p50" % " / ".join(map(str, sizes)),
            " / ".join(f2(g("size%d_dpnet" % s)["p50"]) for s in sizes),
            " / ".join(f2((g("size%d_linux" % s) or {}).get("p50")) for s in sizes),
            "%.2f .. %.2f" % (min(rs), max(rs)) if rs else "-")
    for case, did, lid in (("requests/s, 64 conns x 8 in flight, 64 B", "tput_dpnet", "tput_linux"),
                           ("connections/s (connect, echo, close), 16 in parallel", "cps_dpnet", "cps_linux")):
        if g(did) or g(lid):
            row(case, rate((g(did) or {}).get("rate")), rate((g(lid) or {}).get("rate")),
                rf(div(g(did), g(lid), "rate"), True))
    c64, c8k = g("conns64_dpnet"), g("conns8192_dpnet")
    if c64 or c8k:
        row("requests/s, 8192 vs 64 conns x 8 in flight, 64 B", rate((c8k or {}).get("rate")),
            "%s (64 connections)" % rate((c64 or {}).get("rate")), rf(div(c8k, c64, "rate")))
    bl = g("bulk_linux")
    gb = lambda i: None if g(i) is None else "%.2f" % g(i)["gbit_per_s"]
    for case, did, ref in (
            ("one bulk stream, echoed Gbit/s, MTU 1500", "bulk_dpnet", "TSO/GSO on veth"),
            ("... no TCP checksums (`port.csum none` both ends; veth computes none)", "bulk_nocsum_dpnet", "the same"),
            ("... and the client's memif zero-copy (`zero-copy=yes`)", "bulk_zc_dpnet", "the same"),
            ("... `tcp.send_zc 2` on both ends", "bulk_sendzc_dpnet", "the same"),
            ("... dpnet at MTU 9000 over memif (bsize=9216)", "bulk9k_dpnet", "MTU 1500, TSO/GSO")):
        if g(did):
            row(case, gb(did), "%s (%s)" % (gb("bulk_linux"), ref), rf(div(g(did), bl, "gbit_per_s"), True))
    ce, bd = g("bulk_ceiling"), g("bulk_dpnet")
    if ce:
        pct = lambda x: "-" if x is None else "%.0f%%" % (100 * x)
        row("... the ceiling: raw DPDK bursts of 1514 B frames over the same memif, echoed by "
            "testpmd io (`bench/memif_burst`)", gb("bulk_ceiling"), "-",
            "dpnet %s of it, Linux %s" % (pct(div(bd, ce, "gbit_per_s")), pct(div(bl, ce, "gbit_per_s"))))
    ta, ts = g("tap_attached_tcp"), g("tap_standalone_tcp")
    if ta or ts:
        row("Linux client -> echoserver on net_tap, TCP: attached to dpnetd vs standalone", trio(ta), trio(ts),
            rf(div(ta, ts, "p50")))
    # wrk and redis-benchmark give whole microseconds
    wr = lambda x: "-" if x is None else "%s (%.0f)" % (rate(x["rate"]), x.get("p50") or 0)
    for c in (1, 64):
        d, n = g("http%d_dpnet" % c), g("http%d_nginx" % c)
        if d or n:
            row("HTTP 64 B, wrk -t1 -c%d: httpd vs nginx, req/s (p50 us)" % c, wr(d), wr(n),
                rf(div(d, n, "rate"), True))
    hm = g("httpmemif_dpnet")
    if hm:
        row("HTTP 64 B over memif, one connection, net_latency --http: httpd per request", trio(hm), "-", "-")
    for case, did, lid in (("redis-server 7 unmodified on the sockets layer (net_tap) vs on Linux (veth): "
                            "GET -c 1 -P 1, req/s (p50 us)", "srv_redis_get1_dpnet", "srv_redis_get1_linux"),
                           ("... GET -c 16 -P 16, req/s (p50 us)", "srv_redis_get16_dpnet", "srv_redis_get16_linux"),
                           ("nginx 1.22 unmodified on the sockets layer vs on Linux: wrk -c1, req/s (p50 us)",
                            "srv_nginx1_dpnet", "http1_nginx"),
                           ("... wrk -c64, req/s (p50 us)", "srv_nginx64_dpnet", "http64_nginx")):
        if g(did):
            row(case, wr(g(did)), wr(g(lid)), rf(div(g(did), g(lid), "rate"), True))
    k, e = g("srv_kecho_memif"), g("srv_echo_memif")
    if k:
        row("the layer's cost: kecho through it vs echoserver on the callback API, TCP 64 B over memif",
            trio(k), trio(e), rf(div(k, e, "p50")))
    for p in ("tcp", "udp"):
        d, s = g(p + "64_dpnet"), g(p + "64_linuxspin")
        if s:
            row("%s 64 B RTT vs Linux **spinning** (both ends poll non-blocking sockets)" % p.upper(),
                trio(d), trio(s), rf(div(d, s, "p50")))
    L += rows
    L.append("")

    w = [(c, g("work_c%d" % c)) for c in (1, 64, 1024, 8192) if g("work_c%d" % c)]
    if w:
        L.append("Cost vs work (`--cases work`, same run; dpnet over memif, one request in flight per "
                 "connection, 64 B echo; bulk with one connection per stream; `bench/results/work.png`):")
        L.append("")
        L.append("| connections | requests/s | RTT p50 / p99 / p99.9 us |")
        L.append("|---|---|---|")
        for c, x in w:
            L.append("| %d | %s | %s |" % (c, rate(x["rate"]), trio(x)))
        L.append("")
        s = [(n, g("work_s%d" % n)) for n in (1, 4, 16) if g("work_s%d" % n)]
        if s:
            L.append("| bulk streams | " + " | ".join(str(n) for n, _ in s) + " |")
            L.append("|---|" + "---|" * len(s))
            L.append("| echoed Gbit/s each way | " + " | ".join("%.2f" % x["gbit_per_s"] for _, x in s) + " |")
            L.append("")
        w64, w8k = g("work_c64"), g("work_c8192")
        if w64 and w8k:
            L.append("From 64 to 8192 connections a request costs %.2f to %.2f us (1 / requests/s; the "
                     "connections outgrow the caches). At 8192 the p99 is long: with one request in "
                     "flight per connection, the ones served late in each burst wait for the whole "
                     "queue.%s" % (1e6 / w64["rate"], 1e6 / w8k["rate"],
                                   " More streams share the same two cores, and each adds its own ACK "
                                   "clock and window: 16 streams give %.0f%% of one." %
                                   (100 * g("work_s16")["gbit_per_s"] / g("work_s1")["gbit_per_s"])
                                   if g("work_s16") and g("work_s1") else ""))
            L.append("")

    # The issues' targets, each against this run.
    t = []

    def target(what, val, ok, fmt):
        t.append((what, "-" if val is None else fmt % val, "missing" if val is None else ("met" if ok(val) else "missed")))

    target("issue 13: requests/s with 8192 connections / with 64 (x 8 in flight), >= 0.8",
           div(c8k, c64, "rate"), lambda v: v >= 0.8, "%.3f")
    target("issue 19: one bulk stream / Linux over veth (TSO on), >= 3", div(bd, bl, "gbit_per_s"),
           lambda v: v >= 3, "%.2fx")
    target("issue 19: TCP 64 B RTT p50 / the testpmd floor (interleaved), <= 1.5",
           div(g("tcp64_pair"), fl, "p50"), lambda v: v <= 1.5, "%.2f")
    target("issue 19: TCP 64 B RTT p50 / spinning Linux, <= 0.15", div(g("tcp64_dpnet"), g("tcp64_linuxspin"), "p50"),
           lambda v: v <= 0.15, "%.3f")
    target("issue 19: HTTP over memif, one connection, us per request, <= 2.3", (hm or {}).get("p50"),
           lambda v: v <= 2.3, "%.2f")
    L.append("The issues' targets in this run:")
    L.append("")
    L.append("| target | this run | |")
    L.append("|---|---|---|")
    for what, v, verdict in t:
        L.append("| %s | %s | %s |" % (what, v, verdict))
    L.append("")
    return "\n".join(L) + "\n", all(v == "met" for _, _, v in t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench/results/bench.json")
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--check", action="store_true", help="print the block, write nothing; exit 1 if a target is missed")
    a = ap.parse_args()
    try:
        j = json.load(open(a.json))
    except (OSError, ValueError) as e:
        sys.exit("readme_bench: %s: %s" % (a.json, e))
    text, all_met = block(j)
    if a.check:
        sys.stdout.write(text)
        return 0 if all_met else 1
    readme = open(a.readme).read()
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        sys.exit("readme_bench: %s needs one '%s' line and one '%s' line after it" % (a.readme, BEGIN, END))
    head, rest = readme.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    open(a.readme, "w").write(head + BEGIN + "\n" + text + END + tail)
    print("readme_bench: %s rewritten from %s (targets %s)" % (a.readme, a.json, "all met" if all_met else "not all met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
