#!/usr/bin/python3
"""Round-trip tail under packet loss, for t_loss_tail.sh.

  loss_tail.py run NAME=HOST:PORT [NAME=HOST:PORT ...] --conns C --rounds R
                   [--timeout S] [--budget S]

Drives every target at the same time from one selector loop (same moment,
same loss, same machine load): C connections per target, each doing R
sequential 64 B round trips (send, wait for the whole echo, check it, next).
Every round trip's time is kept. Per target it prints

  NAME n N p50 A p99 B p999 C max D over1s E timeouts F conns_failed G

(times in seconds) and a "#" line with the worst round trips (connection,
round, time). A round trip that takes longer than --timeout is a timeout:
that connection stops there. --budget bounds the whole run: connections
still going when it runs out stop and the figures cover what was done.
Exit status 0 unless a connection failed (refused, reset, wrong echo).

  loss_tail.py synflood IFACE DST_MAC DST_IP PORT SRC_NET N
      N spoofed SYNs from SRC_NET.3-254 (a /24 prefix such as 10.84.0) to
      DST_IP:PORT on IFACE, paced so that the tap drops none: fills the
      listener's backlog, so that the next connections go through SYN
      cookies (the state a SYN flood leaves behind)."""
import os, random, selectors, socket, struct, sys, time

SIZE = 64


class Conn:
    def __init__(self, target, idx, addr, rounds):
        self.target, self.idx, self.rounds = target, idx, rounds
        self.s = socket.socket()
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.setblocking(False)
        self.s.connect_ex(addr)
        self.n = 0  # round trips done
        self.t0 = time.monotonic()  # start of the current round trip (or connect)
        self.msg = b""
        self.got = b""
        self.connected = False

    def send_next(self, now):
        self.msg = struct.pack("!III", self.idx, self.n, random.getrandbits(32)) + os.urandom(SIZE - 12)
        self.got = b""
        self.t0 = now
        self.s.send(self.msg)  # 64 B into an empty send buffer: never partial


def pct(sorted_v, q):
    if not sorted_v:
        return 0.0
    return sorted_v[min(len(sorted_v) - 1, int(q * len(sorted_v)))]


def run(argv):
    targets, conns_n, rounds, timeout, budget = [], 8, 500, 10.0, 90.0
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--conns":
            conns_n = int(argv[i + 1]); i += 2
        elif a == "--rounds":
            rounds = int(argv[i + 1]); i += 2
        elif a == "--timeout":
            timeout = float(argv[i + 1]); i += 2
        elif a == "--budget":
            budget = float(argv[i + 1]); i += 2
        else:
            name, hp = a.split("=", 1)
            host, port = hp.rsplit(":", 1)
            targets.append((name, (host, int(port))))
            i += 1
    sel = selectors.DefaultSelector()
    res = {name: {"rtt": [], "worst": [], "timeouts": 0, "failed": 0, "why": []} for name, _ in targets}
    live = set()
    for name, addr in targets:
        for k in range(conns_n):
            c = Conn(name, k, addr, rounds)
            sel.register(c.s, selectors.EVENT_WRITE, c)
            live.add(c)
    deadline = time.monotonic() + budget

    def drop(c, why=None, timed_out=False):
        r = res[c.target]
        if timed_out:
            r["timeouts"] += 1
        if why:
            r["failed"] += 1
            r["why"].append(f"conn {c.idx} round {c.n}: {why}")
        sel.unregister(c.s)
        c.s.close()
        live.discard(c)

    while live:
        now = time.monotonic()
        if now >= deadline:
            for c in list(live):
                drop(c)
            break
        # Wake at least every 0.2 s to notice timeouts.
        for key, ev in sel.select(timeout=0.2):
            c = key.data
            now = time.monotonic()
            try:
                if not c.connected:
                    err = c.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        drop(c, f"connect: {os.strerror(err)}")
                        continue
                    c.connected = True
                    sel.modify(c.s, selectors.EVENT_READ, c)
                    c.send_next(now)
                    continue
                d = c.s.recv(SIZE - len(c.got))
            except OSError as e:
                drop(c, repr(e))
                continue
            if not d:
                drop(c, "closed by the server")
                continue
            c.got += d
            if len(c.got) < SIZE:
                continue
            if c.got != c.msg:
                drop(c, "echo differs")
                continue
            dt = now - c.t0
            r = res[c.target]
            r["rtt"].append(dt)
            r["worst"].append((dt, c.idx, c.n))
            if len(r["worst"]) > 64:
                r["worst"].sort(reverse=True)
                del r["worst"][8:]
            c.n += 1
            if c.n >= c.rounds:
                drop(c)
            else:
                c.send_next(now)
        now = time.monotonic()
        for c in list(live):
            if c.connected and now - c.t0 > timeout:
                drop(c, None, timed_out=True)
                res[c.target]["why"].append(f"conn {c.idx} round {c.n}: no echo in {timeout:.0f} s")
            elif not c.connected and now - c.t0 > timeout:
                drop(c, f"no connection in {timeout:.0f} s")
    bad = 0
    for name, _ in targets:
        r = res[name]
        v = sorted(r["rtt"])
        over = sum(1 for x in v if x > 1.0)
        print(f"{name} n {len(v)} p50 {pct(v, 0.5):.6f} p99 {pct(v, 0.99):.6f} "
              f"p999 {pct(v, 0.999):.6f} max {v[-1] if v else 0:.6f} over1s {over} "
              f"timeouts {r['timeouts']} conns_failed {r['failed']}")
        w = sorted(r["worst"], reverse=True)[:5]
        print(f"# {name} worst: " + ", ".join(f"{dt:.3f} s (conn {k} round {n})" for dt, k, n in w))
        for why in r["why"][:5]:
            print(f"# {name}: {why}")
        bad += r["failed"]
    sys.stdout.flush()
    return 1 if bad else 0


def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def synflood(iface, dmac, dip, port, net, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    dmac = bytes.fromhex(dmac.replace(":", ""))
    dipb = socket.inet_aton(dip)
    for i in range(n):
        src = socket.inet_aton(f"{net}.{random.randint(3, 254)}")
        tcp = struct.pack("!HHIIBBHHH", random.randint(1024, 65535), port, random.getrandbits(32), 0,
                          5 << 4, 0x02, 64240, 0, 0)
        ph = src + dipb + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum16(ph + tcp)) + tcp[18:]
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, 6, 0, src, dipb)
        iph = iph[:10] + struct.pack("!H", csum16(iph)) + iph[12:]
        smac = bytes([2, 0x66, random.randint(0, 255), random.randint(0, 255), 0, 1])
        s.send(dmac + smac + b"\x08\x00" + iph + tcp)
        if i % 50 == 49:
            time.sleep(0.02)
    print(f"# {n} spoofed SYNs sent to {dip}:{port}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2:]))
    if len(sys.argv) == 8 and sys.argv[1] == "synflood":
        a = sys.argv
        sys.exit(synflood(a[2], a[3], a[4], int(a[5]), a[6], int(a[7])))
    sys.exit(__doc__)
