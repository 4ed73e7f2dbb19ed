#!/usr/bin/python3
"""Turn tools/bench.sh measurements into bench.md, bench.json and PNG plots.

Input: a manifest (one line per measurement: id, kind, run, output file,
samples file or '-', label). Each case ran N times; every table shows the
median run (by p50 for latencies, by rate for throughputs) and lists the
key figure of each run. Run with Debian's python (/usr/bin/python3), which
has matplotlib.
"""
import argparse
import datetime
import json
import os
import re
import sys

SIZES = [64, 512, 1460, 4096, 16384]


def parse(kind, path):
    txt = open(path).read()
    if kind == "sockperf":
        p = {q: 2 * float(v) for q, v in re.findall(r"percentile (\d+\.\d+) =\s*([\d.]+)", txt)}
        m = re.search(r"<MAX> observation =\s*([\d.]+)", txt)
        obs = re.search(r"\[Total Run\] RunTime=([\d.]+) sec; Warm up time=\d+ msec; SentMessages=(\d+)", txt)
        return {"p50": p["50.000"], "p99": p["99.000"], "p99.9": p["99.900"],
                "max": 2 * float(m.group(1)) if m else None,
                "rate": int(obs.group(2)) / float(obs.group(1)) if obs else None}
    line = [l for l in txt.splitlines() if l.startswith("{")][-1]
    r = json.loads(line)
    if kind == "capcost":  # ns per frame of each case; the median run by the 64 B copy
        d = {"p50": r["capture"]["all-64B"]["ns"]}
        d.update({"cap_" + c: v for c, v in r["capture"].items()})
        return d
    if kind == "spell":
        return {"p50": r["pingpong_ns"]["p50"], "min": r["pingpong_ns"]["min"],
                "max": r["pingpong_ns"]["max"], "waited_s": r.get("waited_s", 0)}
    if kind == "noise":
        return {"cpu": r["cpu"], "gaps_per_s": r["gaps_per_s"], "g2": r["gaps_per_s"]["2"],
                "lost_pct": r["lost_pct"], "max_us": r["max_us"]}
    if kind == "bulk":
        return {"gbit_per_s": r["bulk"]["gbit_per_s"], "bytes": r["bulk"]["bytes"],
                "secs": r["bulk"]["secs"], "what": r["what"]}
    if kind == "wrk":
        return {"rate": r["rps"], "p50": r["p50"], "p90": r["p90"], "p99": r["p99"],
                "p99.9": r["p99.9"], "max": r["max"], "requests": r["requests"],
                "errors": r["errors"]}
    t = r["rtt_us"]
    d = {k: t[k] for k in ("min", "p50", "p90", "p99", "p99.9", "max")}
    d.update(rate=r["msgs_per_s"], messages=r["messages"], lost=r["lost"], what=r["what"])
    return d


def key(kind):
    return {"bulk": "gbit_per_s", "rate": "rate", "wrk": "rate", "noise": "g2"}.get(kind, "p50")


def load(manifest):
    runs = {}
    for line in open(manifest):
        f = line.rstrip("\n").split("\t")
        if len(f) < 6:
            continue
        cid, kind, rep, path, samples, label = f[:6]
        try:
            m = parse(kind, path)
        except Exception as e:  # a run whose output cannot be read counts as failed
            print("bench_report: %s run %s unreadable: %s" % (cid, rep, e), file=sys.stderr)
            continue
        m["run"] = int(rep)
        m["samples_file"] = samples if samples != "-" else None
        r = runs.setdefault(cid, {"kind": kind, "label": label, "runs": []})
        r["runs"].append(m)
    res = {}
    for cid, r in runs.items():
        k = key(r["kind"])
        ordered = sorted(r["runs"], key=lambda m: m[k])
        med = ordered[(len(ordered) - 1) // 2]
        out = {"kind": r["kind"], "label": r["label"], "key": k, "median_run": med["run"],
               "each_run": [m[k] for m in sorted(r["runs"], key=lambda m: m["run"])]}
        out.update({a: b for a, b in med.items() if a not in ("run", "samples_file")})
        out["_samples"] = med["samples_file"]
        res[cid] = out
    return res


def f2(x, nd=2):
    if x is None:
        return "-"
    if x >= 1000:
        return "%.0f" % x
    if x >= 100:
        return "%.1f" % x
    return ("%." + str(nd) + "f") % x


def servers_section(L, g, ratios):
    """Case 9: unmodified servers on the sockets layer vs the same on Linux."""
    ids = ["srv_redis_%s%d_%s" % (t, c, s) for t in ("get", "set") for c in (1, 16)
           for s in ("dpnet", "linux")] + ["srv_nginx1_dpnet", "srv_nginx64_dpnet",
                                           "srv_kecho_memif", "srv_echo_memif"]
    if not any(g(i) is not None for i in ids):
        return
    pq = lambda r: "-" if r is None else "%s / %s" % (f2(r.get("p50")), f2(r.get("p99")))
    L.append("## Unmodified servers on the sockets layer (libdpnet-posix.so)")
    L.append("")
    L.append("| case | dpnet req/s | dpnet p50 / p99 us | Linux req/s | Linux p50 / p99 us | dpnet/Linux req/s |")
    L.append("|---|---|---|---|---|---|")
    rows = [("redis %s, -c %d -P %d" % (t.upper(), c, c), "srv_redis_%s%d_dpnet" % (t, c),
             "srv_redis_%s%d_linux" % (t, c)) for t in ("get", "set") for c in (1, 16)]
    rows += [("nginx 64 B file, wrk -c%d" % c, "srv_nginx%d_dpnet" % c, "http%d_nginx" % c)
             for c in (1, 64)]
    for case, did, lid in rows:
        d, l = g(did), g(lid)
        if d is None and l is None:
            continue
        rr = ratio(d, l, "rate")
        L.append("| %s | %s | %s | %s | %s | %s |" % (
            case, rate_fmt(d["rate"]) if d else "failed", pq(d),
            rate_fmt(l["rate"]) if l else "failed", pq(l), rfmt(rr)))
        ratios.append({"case": case, "dpnet": did, "reference": lid, "reference_name": "Linux",
                       "rate": rr})
    L.append("")
    L.append("The same Debian binaries (redis-server 7, nginx 1.22 as one process) on dpnet "
             "through tools/dpnet-run --preload (standalone on net_tap, core 1, the layer "
             "polling without sleeping) and on Linux over veth (core 1); the client, a kernel "
             "program, on core 0. redis-benchmark reports p50 / p95 / p99 / max: p50 and p99 "
             "are shown. On the dpnet side net_tap costs a system call per frame (and wrk or "
             "redis-benchmark are kernel clients either way), which bounds the rows with many "
             "requests in flight; the -c 1 / -P 1 rows are latency bound.")
    k, e = g("srv_kecho_memif"), g("srv_echo_memif")
    if k is not None and e is not None:
        rr = ratio(k, e, "p50")
        L.append("")
        L.append("What the layer costs: kecho (an epoll server for Linux sockets) through the "
                 "layer %s us vs echoserver on the callback API %s us, 64 B TCP round trips "
                 "over memif from net_latency (p50 / p99 / p99.9): **%s** of the callback API." % (
                     trio(k), trio(e), rfmt(rr)))
        ratios.append({"case": "layer cost, TCP 64 B over memif", "dpnet": "srv_kecho_memif",
                       "reference": "srv_echo_memif", "reference_name": "echoserver", "p50": rr})
    L.append("")


def trio(r):
    return "%s / %s / %s" % (f2(r.get("p50")), f2(r.get("p99")), f2(r.get("p99.9")))


def ratio(a, b, k):
    if a is None or b is None or a.get(k) in (None, 0) or b.get(k) in (None, 0):
        return None
    return a[k] / b[k]


def rfmt(x):
    return "-" if x is None else ("%.3f" % x if x < 10 else "%.1f" % x)


def rate_fmt(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bulk-bytes", type=int, default=0)
    a = ap.parse_args()
    res = load(a.manifest)
    g = res.get
    comparisons = []  # (group, case, dpnet id, reference name, reference id)
    comparisons.append(("rtt", "TCP 64 B", "tcp64_dpnet", "Linux blocking (net_latency, epoll)", "tcp64_linux"))
    comparisons.append(("rtt", "TCP 64 B", "tcp64_dpnet", "Linux spinning (non-blocking, both ends)", "tcp64_linuxspin"))
    comparisons.append(("rtt", "TCP 64 B", "tcp64_dpnet", "Linux (sockperf, 2 x one-way)", "tcp64_sockperf"))
    comparisons.append(("rtt", "UDP 64 B", "udp64_dpnet", "Linux blocking (net_latency, epoll)", "udp64_linux"))
    comparisons.append(("rtt", "UDP 64 B", "udp64_dpnet", "Linux spinning (non-blocking, both ends)", "udp64_linuxspin"))
    comparisons.append(("rtt", "UDP 64 B", "udp64_dpnet", "Linux (sockperf, 2 x one-way)", "udp64_sockperf"))
    comparisons.append(("rtt", "UDP 64 B", "udp64_dpnet", "floor: dpnet <-> testpmd 5tswap", "udp64_floor"))
    comparisons.append(("rtt", "TCP 64 B (each run right after a floor run)", "tcp64_pair",
                        "floor: dpnet <-> testpmd 5tswap (UDP)", "udp64_floor"))
    for s in SIZES[1:]:  # 64 B is the first row
        d = "tcp64_dpnet" if s == 64 else "size%d_dpnet" % s
        l = "tcp64_linux" if s == 64 else "size%d_linux" % s
        comparisons.append(("size", "TCP %d B" % s, d, "Linux (net_latency)", l))

    L = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L.append("# dpnet vs Linux: tools/bench.sh%s" % (" --quick (smoke run: small counts, one run)" if a.quick else ""))
    L.append("")
    L.append("Run %s on this machine (see machine.txt), %d run(s) per case; each figure is "
             "the median run (by p50 for round trips, by rate for throughputs). Client side "
             "on core 0, server side on core 1; dpnet polls busy, Linux processes pinned with "
             "taskset. RTT in microseconds." % (now, a.reps))
    L.append("")
    # A section whose cases did not run (tools/bench.sh --cases) is left out.
    shown = lambda ids: any(i in res for i in ids)
    mark = len(L)
    L.append("## Round-trip time, one connection, closed loop (us: p50 / p99 / p99.9)")
    L.append("")
    L.append("| case | dpnet <-memif-> dpnet | reference | reference RTT | ratio p50 | ratio p99 | ratio p99.9 |")
    L.append("|---|---|---|---|---|---|---|")
    ratios = []
    for grp, case, did, rname, rid in comparisons:
        d, r = g(did), g(rid)
        if d is None and r is None:
            continue
        rp = [ratio(d, r, k) for k in ("p50", "p99", "p99.9")]
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            case, trio(d) if d else "failed", rname, trio(r) if r else "failed",
            rfmt(rp[0]), rfmt(rp[1]), rfmt(rp[2])))
        ratios.append({"case": case, "dpnet": did, "reference": rid, "reference_name": rname,
                       "p50": rp[0], "p99": rp[1], "p99.9": rp[2]})
    L.append("")
    L.append("ratio = dpnet / reference (below 1: dpnet faster). sockperf prints one-way latency "
             "(half the round trip); it is shown doubled. Linux blocking: sockets that wait in "
             "epoll_wait/recv (sockperf too); Linux spinning: both ends poll non-blocking "
             "sockets without sleeping (net_latency --kernel --spin, kecho -s; SO_BUSY_POLL set, "
             "which veth ignores), each on its own core as dpnet's. The floor is dpnet's net_latency "
             "against dpdk-testpmd in 5tswap mode (raw DPDK echo, no stack on that side).")
    L.append("")
    if not shown([c[2] for c in comparisons] + [c[4] for c in comparisons]):
        del L[mark:]

    mark = len(L)
    L.append("## Throughput on one core per side")
    L.append("")
    L.append("| case | dpnet | Linux | dpnet/Linux | dpnet p50 / p99 / p99.9 us | Linux p50 / p99 / p99.9 us |")
    L.append("|---|---|---|---|---|---|")
    tp = [("requests/s: 64 conns x 8 in flight, 64 B echo", "tput_dpnet", "tput_linux", "rate", "req/s"),
          ("connections/s: connect, 64 B echo, close; 16 in parallel", "cps_dpnet", "cps_linux", "rate", "conn/s"),
          ("one bulk TCP stream, echoed Gbit/s (%d MiB)" % (a.bulk_bytes >> 20), "bulk_dpnet", "bulk_linux",
           "gbit_per_s", "Gbit/s"),
          ("... dpnet without checksums (port.csum none, both ends; Linux's veth computes none)",
           "bulk_nocsum_dpnet", "bulk_linux", "gbit_per_s", "Gbit/s"),
          ("... and the client's memif in zero-copy mode (zero-copy=yes: one copy per frame, not two)",
           "bulk_zc_dpnet", "bulk_linux", "gbit_per_s", "Gbit/s"),
          ("... dpnet with tcp.send_zc 2 on both ends (dpn_send copies once, into mbufs sent as they are)",
           "bulk_sendzc_dpnet", "bulk_linux", "gbit_per_s", "Gbit/s"),
          ("... dpnet at MTU 9000 (memif bsize=9216) vs Linux at 1500 with TSO", "bulk9k_dpnet",
           "bulk_linux", "gbit_per_s", "Gbit/s")]
    for case, did, lid, k, unit in tp:
        d, l = g(did), g(lid)
        if d is None and l is None:
            continue
        fmt = (lambda x: "-" if x is None else "%.2f %s" % (x, unit)) if k == "gbit_per_s" else \
            (lambda x: "-" if x is None else "%s %s" % (rate_fmt(x), unit))
        rr = ratio(d, l, k)
        L.append("| %s | %s | %s | %s | %s | %s |" % (
            case, fmt(d.get(k)) if d else "failed", fmt(l.get(k)) if l else "failed", rfmt(rr),
            trio(d) if d and k != "gbit_per_s" else "-", trio(l) if l and k != "gbit_per_s" else "-"))
        ratios.append({"case": case, "dpnet": did, "reference": lid, "reference_name": "Linux",
                       k: rr})
    L.append("")
    L.append("Linux: net_latency --kernel (epoll) against kecho over veth; dpnet: net_latency "
             "against echoserver over memif. Connection rate: the client closes first (its "
             "side holds TIME_WAIT; the Linux client namespace has tcp_tw_reuse=1). Bulk: the "
             "client writes and reads at once; the figure is echoed payload per second (each "
             "byte crosses the link twice), measured after the first eighth; MTU 1500 on both, "
             "the kernel uses TSO/GSO over veth, lwIP over memif does not; dpnet sends the "
             "echo zero-copy (memif then copies each frame into its ring). Checksums: the "
             "first dpnet row fills every TCP checksum in software and, as memif's default "
             "(port.csum auto), trusts the ones it receives; the row without checksums sets "
             "port.csum none on both ends, as veth between Linux namespaces computes none; "
             "the zero-copy row also starts the client's memif with zero-copy=yes, where the "
             "server's memif copies each frame straight into and out of the client's mbufs "
             "(memif's server side always copies), so it can pass the copying ceiling below.")
    L.append("")
    c, d, l = g("bulk_ceiling"), g("bulk_dpnet"), g("bulk_linux")
    if c is not None:
        L.append("Ceiling of the bulk rows: raw DPDK bursts of 1514-byte frames (bench/memif_burst, "
                 "no stack; memif copies each frame into its ring and out of it, as it does "
                 "dpnet's segments) over the same memif link, sent back by dpdk-testpmd's io "
                 "forwarding, 512 frames in flight: %.2f Gbit/s counted as 1460 payload bytes "
                 "per frame. dpnet's one stream reaches %s of it%s." % (
                     c["gbit_per_s"], "-" if d is None else "%.0f%%" % (100 * d["gbit_per_s"] / c["gbit_per_s"]),
                     "" if l is None else ", Linux's %.0f%%" % (100 * l["gbit_per_s"] / c["gbit_per_s"])))
        L.append("")
        if d is not None:
            ratios.append({"case": "one bulk stream vs the raw memif ceiling", "dpnet": "bulk_dpnet",
                           "reference": "bulk_ceiling", "reference_name": "raw DPDK bursts",
                           "gbit_per_s": d["gbit_per_s"] / c["gbit_per_s"]})
    if not shown([c[1] for c in tp] + [c[2] for c in tp]):
        del L[mark:]

    scaling_section(L, res, ratios)
    work_section(L, res)

    mark = len(L)
    L.append("## Through dpnetd (attached worker) vs standalone (us: p50 / p99 / p99.9)")
    L.append("")
    L.append("| case | standalone | attached to dpnetd | attached/standalone p50 |")
    L.append("|---|---|---|---|")
    for proto in ("tcp", "udp"):
        for sw in ("", "_sw"):
            s, t = g("tap_standalone_" + proto), g("tap_attached%s_%s" % (sw, proto))
            if s is None and t is None:
                continue
            rr = ratio(t, s, "p50")
            how = "software steering" if sw else "kernel steering"
            L.append("| Linux client -> echoserver on net_tap, %s 64 B, %s | %s | %s | %s |" % (
                proto.upper(), how, trio(s) if s else "failed", trio(t) if t else "failed",
                rfmt(rr)))
            ratios.append({"case": "net_tap %s 64 B attached (%s) vs standalone" % (proto, how),
                           "dpnet": "tap_attached%s_%s" % (sw, proto),
                           "reference": "tap_standalone_" + proto,
                           "reference_name": "standalone", "p50": rr})
    m = g("memifd_tcp")
    d = g("tcp64_dpnet")
    L.append("| dpnet <-memif-> dpnet TCP 64 B, both ends attached to a dpnetd (two daemons) | %s | %s | %s |" % (
        trio(d) if d else "-", trio(m) if m else "did not run / failed", rfmt(ratio(m, d, "p50"))))
    w1, w2 = g("workers1_tput"), g("workers2_tput")
    if w1 is not None or w2 is not None:
        rr = ratio(w2, w1, "rate")
        L.append("| requests/s, Linux client 64 conns x 8 -> echoserver attached to dpnetd (kernel "
                 "steering, net_tap): one worker / two workers of one application on one core | "
                 "%s | %s | %s |" % (rate_fmt(w1.get("rate")) + "/s" if w1 else "failed",
                                     rate_fmt(w2.get("rate")) + "/s" if w2 else "failed",
                                     rfmt(rr)))
        ratios.append({"case": "requests/s, two workers vs one", "dpnet": "workers2_tput",
                       "reference": "workers1_tput", "reference_name": "one worker", "rate": rr})
    for proto in ("tcp", "udp"):
        hw, sw = g("guest_hw_" + proto), g("guest_sw_" + proto)
        if hw is None and sw is None:
            continue
        rr = ratio(hw, sw, "p50")
        L.append("| guest (qemu, software emulation), Linux client -> attached echoserver on net_tap, "
                 "%s 64 B: software steering / hardware rules (rte_flow on TC flower) | %s | %s | %s |" % (
                     proto.upper(), trio(sw) if sw else "failed", trio(hw) if hw else "failed",
                     rfmt(rr)))
        ratios.append({"case": "guest net_tap %s 64 B hardware rules vs software steering" % proto,
                       "dpnet": "guest_hw_" + proto, "reference": "guest_sw_" + proto,
                       "reference_name": "software steering", "p50": rr})
    L.append("")
    L.append("net_tap: the Linux client (net_latency --kernel, core 0) talks to the tap's kernel "
             "side; standalone: echoserver owns the tap (core 1, busy); attached: dpnetd owns it "
             "(2 queue pairs, hybrid polling on core 0 beside the client: a third busy process "
             "would starve one of them) and the echoserver worker (core 1, busy) reads its own "
             "queue (kernel steering: tun runs dpnetd's eBPF program) or gets its frames through "
             "the daemon's ring (software steering). Two daemons over memif: each side "
             "runs dpnetd (hybrid; memif has no RX interrupt, so idle daemons back off and sleep) "
             "and one busy worker on the same core, so this row measures daemon wake-ups as "
             "much as the path; the standalone column there is case 1's dpnet row. Two workers: "
             "both on core 1 beside each other (the client has core 0).")
    L.append("")
    if not shown(["tap_standalone_tcp", "tap_standalone_udp", "tap_attached_tcp",
                  "tap_attached_udp", "memifd_tcp", "guest_hw_tcp", "guest_sw_tcp",
                  "workers1_tput", "workers2_tput"]):
        del L[mark:]

    mark = len(L)
    L.append("## HTTP: dpnet httpd vs nginx, GET of a 64 B file, wrk -t1 (us: p50 / p99 / p99.9)")
    L.append("")
    L.append("| wrk connections | httpd req/s | httpd latency | nginx req/s | nginx latency | httpd/nginx req/s |")
    L.append("|---|---|---|---|---|---|")
    for c in (1, 64):
        h, n = g("http%d_dpnet" % c), g("http%d_nginx" % c)
        if h is None and n is None:
            continue
        rr = ratio(h, n, "rate")
        L.append("| %d | %s | %s | %s | %s | %s |" % (
            c, rate_fmt(h["rate"]) if h else "failed", trio(h) if h else "-",
            rate_fmt(n["rate"]) if n else "failed", trio(n) if n else "-", rfmt(rr)))
        ratios.append({"case": "HTTP wrk -c%d" % c, "dpnet": "http%d_dpnet" % c,
                       "reference": "http%d_nginx" % c, "reference_name": "nginx", "rate": rr})
    L.append("")
    L.append("httpd: standalone on net_tap in a namespace (core 1, busy), wrk in that namespace; "
             "nginx 1.22 (one worker process, core 1, access log off, sendfile, keep-alive) on a "
             "veth address, wrk in the peer namespace. wrk -t1 on core 0 is itself a kernel "
             "client: with 64 connections it saturates near 36k req/s on these machines "
             "whatever the server (shared/PLATFORM.md), so the 64-connection row measures wrk "
             "and the kernel path more than the server. The 1-connection row is latency bound. "
             "Response headers differ (nginx sends more of them).")
    L.append("")
    hm = g("httpmemif_dpnet")
    if hm is not None:
        L.append("One connection over memif, no kernel on either side: httpd (core 1, busy) <- "
                 "net_latency --http /b64 (core 0, busy, keep-alive, each response's status "
                 "checked): %s us per request (p50 / p99 / p99.9), %s req/s." % (
                     trio(hm), rate_fmt(hm.get("rate"))))
        L.append("")
    if not shown(["http1_dpnet", "http64_dpnet", "http1_nginx", "http64_nginx", "httpmemif_dpnet"]):
        del L[mark:]

    servers_section(L, g, ratios)
    capture_section(L, res)
    tails = noise_section(L, res)
    spell_section(L, res)

    L.append("## Every measurement")
    L.append("")
    L.append("| id | set-up | median run: p50 / p99 / p99.9 us | rate | key figure of each run |")
    L.append("|---|---|---|---|---|")
    for cid in sorted(res):
        r = res[cid]
        rate = r.get("gbit_per_s")
        rate = "%.2f Gbit/s" % rate if rate is not None else rate_fmt(r.get("rate")) + "/s"
        if r["kind"] in ("noise", "spell"):
            rate = "-"
        each = ", ".join(f2(x) if r["key"] != "rate" else rate_fmt(x) for x in r["each_run"])
        L.append("| %s | %s | %s | %s | %s (%s) |" % (cid, r["label"], trio(r) if "p50" in r else "-",
                                                    rate, each, r["key"]))
    L.append("")
    L.append("Compare only figures from one run: absolute numbers move by 2x between machines, "
             "and other processes on these two cores disturb busy polling (machine.txt lists "
             "those seen when the run started).")
    L.append("")
    os.makedirs(a.out, exist_ok=True)
    md = "\n".join(L)
    open(os.path.join(a.out, "bench.md"), "w").write(md)

    samples = {cid: r.pop("_samples") for cid, r in res.items()}
    js = {"generated": now, "quick": a.quick, "runs_per_case": a.reps, "unit": "us",
          "results": res, "ratios": ratios, "tail_vs_noise": tails}
    json.dump(js, open(os.path.join(a.out, "bench.json"), "w"), indent=1, sort_keys=True)
    print(md)
    plots(a.out, res, samples)


def capture_section(L, res):
    c = res.get("capture")
    if c is None:
        return
    L.append("## Packet capture: what a worker pays per frame (ns, bench/cap_cost)")
    L.append("")
    L.append("| case | ns per frame | frames written | frames lost |")
    L.append("|---|---|---|---|")
    what = {"off": "capture off (one branch per burst of 32)",
            "all-64B": "every frame, 64 B", "all-1514B": "every frame, 1514 B",
            "match-64B": "filter 'tcp port 80', kept, 64 B",
            "nomatch-64B": "filter 'tcp port 443', not kept, 64 B",
            "match-1514B": "filter 'tcp port 80', kept, 1514 B"}
    for k, label in what.items():
        v = c.get("cap_" + k)
        if v is not None:
            L.append("| %s | %s | %s | %s |" % (label, f2(v["ns"]), v["written"], v["lost"]))
    L.append("")
    L.append("Bursts of 32 frames, 64 B at 2 Mpps and 1514 B at 0.5 Mpps (below what the writer "
             "thread takes into /dev/null, so every frame is copied: a full ring would drop, "
             "which costs less); median of the runs by the 64 B row.")
    L.append("")


def scaling_section(L, res, ratios):
    """Requests/s with 64 and with 8192 connections (case 4b): the 8192 run
    of each repetition follows its 64 run, so each run gives a ratio too."""
    lo, hi = res.get("conns64_dpnet"), res.get("conns8192_dpnet")
    if lo is None and hi is None:
        return
    L.append("## Requests/s vs number of connections (dpnet, 8 requests in flight each, 64 B echo)")
    L.append("")
    L.append("| connections | requests/s (median run) | each run | p50 / p99 / p99.9 us |")
    L.append("|---|---|---|---|")
    for n, r in ((64, lo), (8192, hi)):
        L.append("| %d | %s | %s | %s |" % (
            n, rate_fmt(r["rate"]) if r else "failed",
            ", ".join(rate_fmt(x) for x in r["each_run"]) if r else "-", trio(r) if r else "-"))
    rr = ratio(hi, lo, "rate")
    each = []
    if lo and hi and len(lo["each_run"]) == len(hi["each_run"]):
        each = [h / l for h, l in zip(hi["each_run"], lo["each_run"]) if l]
    L.append("")
    L.append("**8192 / 64 connections: %s** (medians; per run: %s). Target: at least 0.8 "
             "(issue 13: per-segment cost must not grow with the number of connections)." % (
                 rfmt(rr), ", ".join(rfmt(x) for x in each) or "-"))
    L.append("")
    L.append("Both sides over memif, busy polling (client core 0, server core 1); a fresh "
             "echoserver for each measurement; the warm-up sends every connection round "
             "four times before measuring.")
    L.append("")
    ratios.append({"case": "requests/s, 8192 vs 64 connections", "dpnet": "conns8192_dpnet",
                   "reference": "conns64_dpnet", "reference_name": "64 connections",
                   "rate": rr, "each_run": each})


WORK_CONNS = (1, 64, 1024, 8192)
WORK_STREAMS = (1, 4, 16)


def work_section(L, res):
    """Case 4c: cost vs work, one request in flight per connection, and
    bulk over several streams."""
    if not any(("work_c%d" % c) in res for c in WORK_CONNS) and \
            not any(("work_s%d" % s) in res for s in WORK_STREAMS):
        return
    L.append("## Cost vs work (dpnet over memif, busy polling, client core 0, server core 1)")
    L.append("")
    L.append("| connections (1 request in flight each, 64 B echo) | requests/s | RTT p50 / p99 / p99.9 us "
             "| 1 / requests/s, us |")
    L.append("|---|---|---|---|")
    for c in WORK_CONNS:
        r = res.get("work_c%d" % c)
        L.append("| %d | %s | %s | %s |" % (c, rate_fmt(r["rate"]) if r else "failed",
                                          trio(r) if r else "-",
                                          f2(1e6 / r["rate"], 3) if r and r["rate"] else "-"))
    L.append("")
    L.append("| bulk streams (one connection each, echoed) | Gbit/s each way (median run) | each run |")
    L.append("|---|---|---|")
    for s in WORK_STREAMS:
        r = res.get("work_s%d" % s)
        L.append("| %d | %s | %s |" % (s, f2(r["gbit_per_s"]) if r else "failed",
                                      ", ".join(f2(x) for x in r["each_run"]) if r else "-"))
    L.append("")
    L.append("With one request in flight per connection, each connection sends its next request "
             "when its answer arrives: the mean RTT is the queue's (Little's law: connections / "
             "requests/s), and requests/s shows what a request costs once the cores are saturated "
             "(server time per request = 1 / requests/s, the client's core being as busy). A p50 "
             "well under the mean, with a long p99, means some connections wait longer than others "
             "(the burst order). work.png plots both.")
    L.append("")


def above(samples_file, limit):
    """Round trips above limit us, all round trips, and the seconds they span."""
    n = count = 0
    us = 0.0
    for line in open(samples_file):
        x = float(line)
        us += x
        count += 1
        n += x > limit
    return n, count, us / 1e6


def spell_section(L, res):
    """The host's placement of the two vCPUs before each case: one cache
    line's round trip between core 0 and core 1 (spin_noise --pingpong)."""
    # res keeps the manifest's order, which is the order the cases ran in
    sp = [(cid[len("spell_"):], r) for cid, r in res.items() if r["kind"] == "spell"]
    if not sp:
        return
    L.append("## Host state: core 0 <-> core 1 cache-line round trip before each case (ns)")
    L.append("")
    waits = any(r.get("waited_s") for _, r in sp)
    L.append("| before | round trip ns |" + (" waited s |" if waits else ""))
    L.append("|---|---|" + ("---|" if waits else ""))
    for c, r in sp:  # "bulk.r2": run 2 of case bulk (--wait-near)
        name = "%s, run %s" % tuple(c.split(".r")) if ".r" in c else c
        L.append("| %s | %.0f |" % (name, r["p50"]) + (" %d |" % r.get("waited_s", 0) if waits else ""))
    L.append("")
    L.append("Two threads bounce one cache line between the cores for 0.3 s with nothing else "
             "of ours running (median of rounds of 10000). On this VM it reads about 100-130 ns "
             "when the host places the two vCPUs close and 430-500 ns when far, and changes "
             "within minutes; every figure that crosses the cores moves with it (the floor and "
             "the 64 B round trips by about 4x, bulk by about 2x, Linux's less). A case that "
             "took longer than a spell may have seen both. With --wait-near the run waited "
             "(bounded) for the near placement before each run of the cases with targets "
             "(lat, floor, conns, bulk, HTTP over memif); the other cases ran as the host was.")
    L.append("")


def noise_section(L, res):
    """Machine noise (spin_noise on both cores) against the 64 B tails.

    A ping-pong has one frame in flight, so a core that stops for g us while
    it is on the round trip's path adds about g to that round trip; with two
    busy cores that is nearly always. p99.9 <= 3 x p50 needs fewer than 0.1%
    of round trips to gain 2 x p50 or more."""
    cores = [res[k] for k in sorted(res) if res[k]["kind"] == "noise"]
    if not cores:
        return []
    L.append("## Machine noise: what a busy poller loses on each core (us)")
    L.append("")
    lims = ["1", "2", "3", "10", "100", "1000"]
    L.append("| core | " + " | ".join("gaps >= %s us /s" % x for x in lims) + " | time lost | longest gap |")
    L.append("|---|" + "---|" * (len(lims) + 2))
    for c in cores:
        L.append("| %d | %s | %.2f%% | %s us |" % (
            c["cpu"], " | ".join("%.0f" % c["gaps_per_s"][x] for x in lims), c["lost_pct"],
            f2(c["max_us"])))
    L.append("")
    L.append("spin_noise spins on each core at once reading the TSC and counts the gaps between "
             "two reads (median of the runs by gaps >= 2 us; one run before each TCP/UDP 64 B "
             "run). A gap is time the core was taken away: guest timer interrupts (HZ=250 here, "
             "about 8 us each in this VM), the hypervisor's own exits, other processes.")
    L.append("")
    tails = []
    rows = []
    buckets = sorted(cores[0]["gaps_per_s"], key=float)
    for cid, name in (("tcp64_dpnet", "TCP 64 B"), ("udp64_dpnet", "UDP 64 B")):
        d = res.get(cid)
        if d is None or not d.get("_samples") or not os.path.exists(d["_samples"]):
            continue
        p50 = d["p50"]
        n, total, secs = above(d["_samples"], 3 * p50)
        # the gap that lifts a round trip over 3 x p50 is 2 x p50; the probe's
        # buckets bracket it (gaps of at least lo us, and of at least hi us)
        lo = max((x for x in buckets if float(x) <= 2 * p50), key=float, default=buckets[0])
        hi = min((x for x in buckets if float(x) >= 2 * p50), key=float, default=buckets[-1])
        if total == 0:
            continue
        nlo = sum(c["gaps_per_s"][lo] for c in cores)
        nhi = sum(c["gaps_per_s"][hi] for c in cores)
        t = {"case": name, "p50": p50, "p99.9": d["p99.9"], "round_trips_per_s": d["rate"],
             "above_3x_p50_per_s": n / secs, "above_3x_p50_pct": 100.0 * n / total,
             "noise_gaps_per_s": {lo: nlo, hi: nhi},
             "noise_pct_of_round_trips": {lo: 100.0 * nlo / d["rate"], hi: 100.0 * nhi / d["rate"]}}
        tails.append(t)
        rows.append("| %s | %s | %s (%.1f x p50) | %s/s | %.0f/s = %.3f%% | %s us: %.0f/s = %.3f%%; %s us: %.0f/s = %.3f%% |" % (
            name, f2(p50), f2(d["p99.9"]), d["p99.9"] / p50, rate_fmt(d["rate"]),
            t["above_3x_p50_per_s"], t["above_3x_p50_pct"], lo, nlo, 100.0 * nlo / d["rate"],
            hi, nhi, 100.0 * nhi / d["rate"]))
    if rows:
        L.append("| dpnet <-memif-> dpnet | p50 | p99.9 | round trips | round trips above 3 x p50 "
                 "| noise gaps around 2 x p50, both cores, per round trip |")
        L.append("|---|---|---|---|---|---|")
        L.extend(rows)
        L.append("")
        L.append("p99.9 <= 3 x p50 holds only while fewer than 0.1% of round trips are above "
                 "3 x p50. A core that stops for more than 2 x p50 while the round trip needs "
                 "it puts that round trip there; with one frame in flight and both cores "
                 "polling, nearly every such stop does. The probe only reads the clock: it sees "
                 "how often a core is taken away, not the cache and TLB refills that follow for "
                 "a stack, nor stops that only code touching memory provokes, so its column is "
                 "a lower bound. Where it is near 0.1%, the p99.9 is the machine's.")
        L.append("")
    return tails


def plots(outdir, res, samples):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        print("bench_report: no matplotlib: no plots (apt-get install python3-matplotlib)")
        return
    # RTT CDF, dpnet vs Linux (and the floor)
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
    curves = [("tcp64_dpnet", "TCP dpnet", "C0", "-"), ("tcp64_linux", "TCP Linux", "C3", "-"),
              ("udp64_dpnet", "UDP dpnet", "C0", "--"), ("udp64_linux", "UDP Linux", "C3", "--"),
              ("udp64_floor", "UDP floor (testpmd)", "k", ":")]
    drawn = 0
    for cid, name, col, ls in curves:
        f = samples.get(cid)
        if not f or not os.path.exists(f):
            continue
        v = np.sort(np.array(open(f).read().split(), dtype=float))
        if len(v) == 0:
            continue
        n = len(v)
        idx = np.unique(np.concatenate([np.linspace(0, n - 1, 4000).astype(int),
                                        np.arange(max(0, n - 2000), n)]))
        y = (idx + 1) / n
        axs[0].plot(v[idx], y, color=col, ls=ls, label="%s (n=%d)" % (name, n))
        axs[1].plot(v[idx], 1 - y + 1.0 / n, color=col, ls=ls, label=name)
        drawn += 1
    if drawn:
        for ax in axs:
            ax.set_xscale("log")
            ax.set_xlabel("round-trip time (us), 64 B, one connection")
            ax.grid(True, which="both", alpha=0.3)
        axs[0].set_ylabel("fraction of round trips <= x")
        axs[1].set_yscale("log")
        axs[1].set_ylabel("fraction > x (tail)")
        axs[0].legend(fontsize=8)
        axs[0].set_title("RTT CDF: dpnet (memif) vs Linux (veth)")
        axs[1].set_title("tail (1 - CDF)")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "rtt_cdf.png"), dpi=110)
    plt.close(fig)

    # RTT vs message size
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for stack, col in (("dpnet", "C0"), ("linux", "C3")):
        xs, p50, p99 = [], [], []
        for s in SIZES:
            r = res.get("tcp64_%s" % stack if s == 64 else "size%d_%s" % (s, stack))
            if r:
                xs.append(s)
                p50.append(r["p50"])
                p99.append(r["p99"])
        if xs:
            name = "dpnet (memif)" if stack == "dpnet" else "Linux (veth)"
            ax.plot(xs, p50, "o-", color=col, label=name + " p50")
            ax.plot(xs, p99, "s--", color=col, alpha=0.6, label=name + " p99")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(SIZES)
    ax.set_xticklabels([str(s) for s in SIZES])
    ax.set_xlabel("message size (B), TCP, one connection")
    ax.set_ylabel("round-trip time (us)")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:  # none when tools/bench.sh --cases left these cases out
        ax.legend(fontsize=8)
    ax.set_title("TCP RTT vs message size")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "rtt_vs_size.png"), dpi=110)
    plt.close(fig)

    # Throughput bars
    panels = [("requests/s\n64 conns x 8 in flight", "tput_%s", "rate", 1),
              ("connections/s\nconnect + echo + close", "cps_%s", "rate", 1),
              ("bulk stream\nechoed Gbit/s", "bulk_%s", "gbit_per_s", 1),
              ("HTTP req/s, wrk -c1", "http1_%s", "rate", 2),
              ("HTTP req/s, wrk -c64", "http64_%s", "rate", 2)]
    fig, axs = plt.subplots(1, len(panels), figsize=(16, 4))
    for ax, (title, pat, k, kind) in zip(axs, panels):
        names = ("dpnet", "linux") if kind == 1 else ("dpnet", "nginx")
        labels = ("dpnet", "Linux") if kind == 1 else ("dpnet httpd", "nginx")
        vals = [res.get(pat % n, {}).get(k) or 0 for n in names]
        bars = ax.bar(labels, vals, color=["C0", "C3"])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v, ("%.2f" % v) if k == "gbit_per_s" else rate_fmt(v),
                    ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Throughput, one core per side (median run)")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "throughput.png"), dpi=110)
    plt.close(fig)

    # Cost vs work (case 4c)
    cs = [c for c in WORK_CONNS if res.get("work_c%d" % c)]
    ss = [s for s in WORK_STREAMS if res.get("work_s%d" % s)]
    if cs or ss:
        fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
        if cs:
            ax = axs[0]
            ax.plot(cs, [res["work_c%d" % c]["rate"] / 1e6 for c in cs], "o-", color="C0",
                    label="requests/s (M)")
            ax.set_xscale("log", base=2)
            ax.set_xticks(cs)
            ax.set_xticklabels([str(c) for c in cs])
            ax.set_xlabel("connections, 1 request in flight each (64 B echo)")
            ax.set_ylabel("million requests/s", color="C0")
            ax.grid(True, which="both", alpha=0.3)
            ax2 = ax.twinx()
            ax2.plot(cs, [res["work_c%d" % c]["p50"] for c in cs], "s--", color="C3", label="RTT p50")
            ax2.plot(cs, [res["work_c%d" % c]["p99"] for c in cs], "^:", color="C3", alpha=0.6,
                     label="RTT p99")
            ax2.set_yscale("log")
            ax2.set_ylabel("round-trip time (us)", color="C3")
            ax2.legend(fontsize=8, loc="upper center")
            ax.set_title("requests/s and RTT vs connections")
        if ss:
            ax = axs[1]
            vals = [res["work_s%d" % s]["gbit_per_s"] for s in ss]
            bars = ax.bar([str(s) for s in ss], vals, color="C0")
            for b, v in zip(bars, vals):
                ax.text(b.get_x() + b.get_width() / 2, v, "%.2f" % v, ha="center", va="bottom", fontsize=8)
            ax.set_xlabel("bulk streams (one connection each)")
            ax.set_ylabel("echoed Gbit/s each way")
            ax.grid(True, axis="y", alpha=0.3)
            ax.set_title("bulk vs streams")
        fig.suptitle("Cost vs work: dpnet over memif, one core per side (median run)")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "work.png"), dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
