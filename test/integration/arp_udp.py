#!/usr/bin/python3
"""Peer for t_arp_udp.sh: UDP from sources no datagram may come from, and
gratuitous ARP against a dpnet server on net_tap, seen from the wire.
Frames are written and read on the namespace's tap interface through an
AF_PACKET socket (scapy builds them); everything arriving there that is
not outgoing was written by dpnet.

  arp_udp.py udp IFACE DPN_MAC DPN_IP PEER_IP PORT
      Datagrams to DPN_IP:PORT (an echo socket) from broadcast, multicast,
      0/8, loopback, class E and dpnet's own address, plain (dpnet's fast
      path) and with an IP option (lwIP's path): nothing may come back.
      Then a normal socket's datagrams are echoed. Prints "echoed N", the
      datagrams the server's application must have seen.

  arp_udp.py keeper HOST PORT MAX_S
      A Linux TCP connection echoing every 20 ms until SIGUSR1 (or MAX_S);
      exits 1 at the first mismatch, loss (5 s) or reset.

  arp_udp.py flood IFACE DPN_MAC DPN_IP PEER_IP SECONDS
      Gratuitous ARP requests and replies, unsolicited replies and requests
      for dpnet's address, all saying "PEER_IP is at FAKE", for SECONDS
      while the keeper runs: every IPv4 frame dpnet sends to PEER_IP must
      still go to the real MAC, none to FAKE; dpnet's probes go to the real
      MAC (the kernel answers them).

  arp_udp.py failover IFACE DPN_MAC DPN_IP PEER_IP NEW_MAC
      A real move: the kernel side's MAC becomes NEW_MAC (the kernel
      drops what still comes to the old one), one gratuitous ARP from it,
      then ICMP echo requests every 100 ms; dpnet's replies must reach the
      new MAC within 5 s, after its probes to the old MAC went unanswered.

Prints "ok - NAME" / "not ok - NAME" lines (the test script counts them)
and "# ..." notes. Every wait is bounded in time and every loop in count."""
import os, random, select, signal, socket, struct, subprocess, sys, time

T0 = time.time()


def note(msg):
    print(f"# [{time.time() - T0:6.2f}s] {msg}", flush=True)


RESULTS = {"fail": 0}


def check(name, cond, why=""):
    if not cond:
        RESULTS["fail"] += 1
    print(("ok - " if cond else "not ok - ") + name + (f"  # {why}" if why and not cond else ""),
          flush=True)
    return cond


# ---------------------------------------------------------------- keeper --

def keeper(host, port, max_s):
    stop = []
    signal.signal(signal.SIGUSR1, lambda *a: stop.append(1))
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    n, t_end, worst = 0, time.time() + max_s, 0.0
    while not stop and time.time() < t_end:
        msg = os.urandom(random.randint(1, 1400))
        t = time.time()
        try:
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                c = s.recv(len(msg) - len(got))
                if not c:
                    print(f"FAIL round {n + 1}: closed by the server", flush=True)
                    sys.exit(1)
                got += c
        except OSError as e:
            print(f"FAIL round {n + 1}: {e!r}", flush=True)
            sys.exit(1)
        if got != msg:
            print(f"FAIL round {n + 1}: echo of {len(msg)} B differs", flush=True)
            sys.exit(1)
        worst = max(worst, time.time() - t)
        n += 1
        print(f"rt {n}", flush=True)
        time.sleep(0.02)
    s.close()
    print(f"keeper: {n} round trips verified, slowest {worst * 1000:.0f} ms", flush=True)


# ----------------------------------------------------------------- wire --
from scapy.all import ARP, ICMP, IP, UDP, Ether, IPOption_RR, Raw  # noqa: E402

ETH_P_ALL, SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 3, 263, 1, 1
PACKET_OUTGOING = 4
BCAST = "ff:ff:ff:ff:ff:ff"
FAKE = "02:66:66:66:66:66"


class Wire:
    def __init__(self, iface):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.s.bind((iface, 0))
        idx = socket.if_nametoindex(iface)
        self.s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                          struct.pack("iHH8s", idx, PACKET_MR_PROMISC, 0, b""))
        self.s.setblocking(False)
        with open(f"/sys/class/net/{iface}/address") as f:
            self.mac = f.read().strip().lower()

    def send(self, frame):
        b = frame if isinstance(frame, bytes) else bytes(frame)
        for _ in range(50):
            try:
                return self.s.send(b)
            except BlockingIOError:
                time.sleep(0.001)
        raise RuntimeError("AF_PACKET send blocked for 50 ms")

    def raw(self, seconds):
        """Frames written by dpnet (raw bytes) for up to seconds."""
        out, end = [], time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return out
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                continue
            for _ in range(10000):
                try:
                    data, addr = self.s.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != PACKET_OUTGOING:
                    out.append(data)


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def ip_str(b):
    return socket.inet_ntoa(b)


class Frame:
    """The fields of a raw frame this test looks at."""

    def __init__(self, b):
        self.dst, self.src = mac_str(b[0:6]), mac_str(b[6:12])
        self.type = b[12:14]
        self.ipv4 = self.type == b"\x08\x00" and len(b) >= 34
        self.arp = self.type == b"\x08\x06" and len(b) >= 42
        if self.ipv4:
            self.proto, self.ip_src, self.ip_dst = b[23], ip_str(b[26:30]), ip_str(b[30:34])
        if self.arp:
            self.op = b[21]
            self.sha, self.spa = mac_str(b[22:28]), ip_str(b[28:32])
            self.tpa = ip_str(b[38:42])


# ------------------------------------------------------------------ udp --

BAD_SOURCES = ["255.255.255.255", "{net}.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",
               "0.0.0.0", "0.1.2.3", "127.0.0.1", "{dip}"]


def udp_case(a):
    w = Wire(a[0])
    dmac, dip, pip, port = a[1].lower(), a[2], a[3], int(a[4])
    net = dip.rsplit(".", 1)[0]
    bad = [s.format(net=net, dip=dip) for s in BAD_SOURCES]
    w.raw(0.05)
    for path, opts in (("fast path", []), ("lwIP's path (IP option)", [IPOption_RR()])):
        for src in bad:
            w.send(Ether(dst=dmac, src=w.mac) / IP(src=src, dst=dip, options=opts)
                   / UDP(sport=5353, dport=port) / Raw(b"reflect me"))
        got = [Frame(b) for b in w.raw(1.0)]
        answers = [f for f in got if f.ipv4 or (f.arp and f.op == 1 and f.tpa in bad)]
        check(f"UDP from {len(bad)} broadcast/multicast/0/loopback/own sources, {path}: "
              "nothing answered", not answers,
              f"{len(answers)} frames, e.g. to {answers[0].dst} proto "
              f"{getattr(answers[0], 'proto', 'arp')}" if answers else "")
    # A normal socket gets its echoes, and they go to the peer's MAC.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((pip, 0))
    s.settimeout(2)
    echoed = 0
    for i in range(5):
        msg = f"normal datagram {i}".encode()
        s.sendto(msg, (dip, port))
        try:
            data, _ = s.recvfrom(2048)
            echoed += data == msg
        except socket.timeout:
            pass
    s.close()
    check(f"UDP from a normal socket echoed ({echoed} of 5)", echoed == 5)
    print(f"echoed {echoed}", flush=True)


# ---------------------------------------------------------------- flood --

def flood(a):
    w = Wire(a[0])
    dmac, dip, pip, seconds = a[1].lower(), a[2], a[3], float(a[4])
    real = w.mac
    frames = [bytes(f) for f in (
        Ether(dst=BCAST, src=FAKE) / ARP(op=1, hwsrc=FAKE, psrc=pip, hwdst="00:00:00:00:00:00",
                                         pdst=pip),
        Ether(dst=BCAST, src=FAKE) / ARP(op=2, hwsrc=FAKE, psrc=pip, hwdst=BCAST, pdst=pip),
        Ether(dst=dmac, src=FAKE) / ARP(op=2, hwsrc=FAKE, psrc=pip, hwdst=dmac, pdst=dip),
        Ether(dst=BCAST, src=FAKE) / ARP(op=1, hwsrc=FAKE, psrc=pip, pdst=dip))]
    sent, seen, t_end = 0, [], time.time() + seconds
    while time.time() < t_end:
        for i in range(64):
            w.send(frames[i & 3])
        sent += 64
        seen += [Frame(b) for b in w.raw(0.005)]
    seen += [Frame(b) for b in w.raw(0.3)]
    note(f"flood: {sent} ARP frames claiming {pip} is at {FAKE} in {seconds:.1f} s; "
         f"{len(seen)} frames from dpnet")
    to_peer = [f for f in seen if f.ipv4 and f.ip_dst == pip]
    wrong = [f for f in to_peer if f.dst != real]
    to_fake = [f for f in seen if f.dst == FAKE]
    probes = [f for f in seen if f.arp and f.op == 1 and f.tpa == pip]
    uni = [f for f in probes if f.dst == real]
    note(f"flood: {len(to_peer)} IPv4 frames to {pip}, {len(wrong)} not to its MAC; "
         f"{len(probes)} ARP requests for it ({len(uni)} unicast to the real MAC)")
    check(f"during the flood dpnet kept sending to the real MAC ({len(to_peer)} frames)",
          len(to_peer) >= 20 and not wrong,
          f"{len(wrong)} to {sorted({f.dst for f in wrong})}" if wrong else "too few frames")
    check("no frame from dpnet to the flood's MAC (no ARP reply either)", not to_fake,
          f"{len(to_fake)} frames")
    check(f"dpnet probed the real MAC before letting another take it ({len(uni)} probes)",
          len(uni) >= 2 and len(uni) == len(probes),
          f"{len(probes)} requests, to {sorted({f.dst for f in probes})}")


# ------------------------------------------------------------- failover --

def failover(a):
    w = Wire(a[0])
    dmac, dip, pip, new = a[1].lower(), a[2], a[3], a[4].lower()
    old = w.mac
    w.raw(0.05)
    t0 = time.time()
    subprocess.run(["ip", "link", "set", "dev", a[0], "address", new], check=True)
    w.send(Ether(dst=BCAST, src=new) / ARP(op=1, hwsrc=new, psrc=pip, hwdst="00:00:00:00:00:00",
                                           pdst=pip))
    seen, ident, moved = [], 0x5100, None
    while time.time() < t0 + 5 and moved is None:
        ident += 1
        w.send(Ether(dst=dmac, src=new) / IP(src=pip, dst=dip) / ICMP(id=ident, seq=1)
               / Raw(b"failover"))
        for b in w.raw(0.1):
            f = Frame(b)
            seen.append(f)
            if f.ipv4 and f.proto == 1 and f.ip_dst == pip and f.dst == new and moved is None:
                moved = time.time() - t0
    seen += [Frame(b) for b in w.raw(0.2)]
    old_replies = [f for f in seen if f.ipv4 and f.ip_dst == pip and f.dst == old]
    probes = [f for f in seen if f.arp and f.op == 1 and f.tpa == pip]
    uni = [f for f in probes if f.dst == old]
    bc = [f for f in probes if f.dst == BCAST]
    note(f"failover: {len(old_replies)} frames to the old MAC, {len(uni)} probes to it, "
         f"{len(bc)} broadcast requests, moved after "
         f"{'%.2f s' % moved if moved is not None else 'never'}")
    check(f"the peer's real MAC change took effect within 5 s ({moved or 0:.2f} s)",
          moved is not None)
    check(f"... after the old MAC failed its probes ({len(uni)} unanswered, "
          f"{len(bc)} broadcast)", len(uni) >= 3 and len(bc) >= 1)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "keeper":
        keeper(a[0], int(a[1]), float(a[2]))
        return
    {"udp": udp_case, "flood": flood, "failover": failover}[cmd](a)
    sys.exit(1 if RESULTS["fail"] else 0)


if __name__ == "__main__":
    main()
