#!/usr/bin/python3
"""Clients for t_synflood.sh: keepers and new clients around a SYN flood.

  synflood.py HOST PORT KEEPERS CLIENTS BUDGET_S [--watch PID]
              [--wire IFACE CLIENT_IP SPOOF] -- FLOOD_CMD...

Opens KEEPERS connections, which echo every 50 ms from before the flood to
after it. Starts FLOOD_CMD (test/tools/synflood, bounded), and once it
floods, CLIENTS new clients, one every 100 ms, each of which must connect
and echo 64 bytes within BUDGET_S seconds. Prints what happened and one
"result ..." line of figures for the script to judge; exits non-zero only
when it could not run (no keeper connection, no flood).
--watch PID: how long PID's main thread (dpnet's worker) ran and how long it
waited for a CPU during the flood (/proc/PID/task/PID/schedstat).
--wire IFACE CLIENT_IP SPOOF: watch IFACE (the clients' side) for the ARP
requests for SPOOF (the server looking for the spoofed address) and for the
segments of each new client, to say where a failed one was lost. Frames the
flooder writes skip the qdisc and thus this socket; a BPF filter keeps all
but ARP and CLIENT_IP's own segments out."""
import ctypes, os, random, socket, struct, subprocess, sys, threading, time

SPACING = 0.1  # s between new clients
FIRST = 0.5  # s from the flood's start to the first new client
RT_TIMEOUT = 5.0  # a keeper round trip slower than this counts as lost


class Keeper(threading.Thread):
    def __init__(self, host, port, i, stop):
        super().__init__(daemon=True)
        self.i, self.stop = i, stop
        self.s = socket.create_connection((host, port), timeout=RT_TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rts = []  # (start, seconds) of each round trip
        self.fail = None

    def run(self):
        rnd = random.Random(self.i)
        while not self.stop.is_set():
            msg = rnd.randbytes(rnd.randint(1, 1000))
            t = time.monotonic()
            try:
                self.s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    c = self.s.recv(len(msg) - len(got))
                    if not c:
                        self.fail = f"round {len(self.rts) + 1}: closed by the server"
                        return
                    got += c
            except OSError as e:
                self.fail = f"round {len(self.rts) + 1} after {time.monotonic() - t:.1f} s: {e!r}"
                return
            if got != msg:
                self.fail = f"round {len(self.rts) + 1}: echo of {len(msg)} B differs"
                return
            self.rts.append((t, time.monotonic() - t))
            self.stop.wait(0.05)
        self.s.close()


def client(host, port, budget, out, ports, starts, i):
    t0 = starts[i] = time.monotonic()
    msg = os.urandom(64)
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", 0))  # the port is known even if connect fails
        ports[i] = s.getsockname()[1]
        s.settimeout(budget)
        s.connect((host, port))
        connected = time.monotonic() - t0
        s.settimeout(max(0.01, budget - (time.monotonic() - t0)))
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            c = s.recv(len(msg) - len(got))
            if not c:
                raise OSError("closed by the server")
            got += c
        dt = time.monotonic() - t0
        if got != msg:
            out[i] = (False, dt, "echo differs")
        elif dt > budget:
            out[i] = (False, dt, f"took {dt:.2f} s")
        else:
            out[i] = (True, dt, f"connected in {connected * 1000:.0f} ms")
    except OSError as e:
        out[i] = (False, time.monotonic() - t0, repr(e))
    finally:
        s.close()


class Wire(threading.Thread):
    """ARP requests for the spoofed address, and per client port: SYNs out,
    SYN-ACKs in, data segments out and in."""

    def __init__(self, iface, client_ip, spoof, stop):
        super().__init__(daemon=True)
        self.stop, self.arp = stop, 0
        self.spoof = socket.inet_aton(spoof)
        self.ports = {}  # port -> [syn out, syn-ack in, data out, data in]
        self.trace = {}  # port -> [(time, "out"/"in", flags, seq, ack, payload length)]
        cip = struct.unpack("!I", socket.inet_aton(client_ip))[0]
        prog = [  # ARP, or IPv4 from or to CLIENT_IP
            (0x28, 0, 0, 12), (0x15, 5, 0, 0x0806), (0x15, 0, 5, 0x0800),
            (0x20, 0, 0, 26), (0x15, 2, 0, cip), (0x20, 0, 0, 30), (0x15, 0, 1, cip),
            (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0)]
        self.filt = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *p) for p in prog))
        fprog = struct.pack("HL", len(prog), ctypes.addressof(self.filt))
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
        self.s.bind((iface, 0))
        self.s.settimeout(0.2)

    def run(self):
        while not self.stop.is_set():
            try:
                f, addr = self.s.recvfrom(256)
            except socket.timeout:
                continue
            out = addr[2] == socket.PACKET_OUTGOING
            if f[12:14] == b"\x08\x06":
                if not out and f[20:22] == b"\0\1" and f[38:42] == self.spoof:
                    self.arp += 1
                continue
            if len(f) < 54 or f[23] != 6:
                continue
            ihl = (f[14] & 15) * 4
            t = 14 + ihl
            iplen = struct.unpack("!H", f[16:18])[0]
            sport, dport = struct.unpack("!HH", f[t:t + 4])
            flags, thl = f[t + 13], (f[t + 12] >> 4) * 4
            port = sport if out else dport
            c = self.ports.setdefault(port, [0, 0, 0, 0])
            seq, ack = struct.unpack("!II", f[t + 4:t + 12])
            self.trace.setdefault(port, []).append(
                (time.monotonic(), "out" if out else "in", flags, seq, ack, iplen - ihl - thl))
            if out and flags & 0x12 == 0x02:
                c[0] += 1
            elif not out and flags & 0x12 == 0x12:
                c[1] += 1
            elif iplen - ihl - thl > 0:
                c[3 if not out else 2] += 1


def schedstat(pid):
    """(ns on CPU, ns waiting for one) of PID's main thread, or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            run, wait, _ = f.read().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def tcp_counters():
    """This namespace's RetransSegs and TCPSynRetrans."""
    got = {}
    for path, group in (("/proc/net/snmp", "Tcp:"), ("/proc/net/netstat", "TcpExt:")):
        with open(path) as f:
            rows = [line.split() for line in f if line.startswith(group)]
        got.update(zip(rows[0][1:], rows[1][1:]))
    return int(got.get("RetransSegs", 0)), int(got.get("TCPSynRetrans", 0))


def main():
    host, port, nkeep, ncli, budget = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), float(sys.argv[5]))
    opts = sys.argv[6:sys.argv.index("--")]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    watch = int(opts[opts.index("--watch") + 1]) if "--watch" in opts else None
    stop = threading.Event()
    wire = None
    if "--wire" in opts:
        i = opts.index("--wire")
        wire = Wire(opts[i + 1], opts[i + 2], opts[i + 3], stop)
        wire.start()
    keepers = [Keeper(host, port, i, stop) for i in range(nkeep)]
    for k in keepers:
        k.start()
    time.sleep(0.5)  # a few round trips before the flood

    flood = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = flood.stdout.readline()
    print("flood:", line.rstrip(), flush=True)
    if "flooding" not in line:
        flood.wait(timeout=5)
        print("no flood:", flood.stdout.read().strip())
        stop.set()
        return 1
    f0 = time.monotonic()
    s0 = schedstat(watch) if watch else None
    r0 = tcp_counters()

    out = [(False, 0.0, "not started")] * ncli
    ports, starts = [0] * ncli, [0.0] * ncli
    threads = []
    for i in range(ncli):
        time.sleep(max(0.0, f0 + FIRST + i * SPACING - time.monotonic()))
        t = threading.Thread(target=client, args=(host, port, budget, out, ports, starts, i), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(budget + 2)
    clients_done = time.monotonic()
    try:
        rest, _ = flood.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        flood.kill()
        rest, _ = flood.communicate()
    f1 = time.monotonic()
    s1 = schedstat(watch) if watch else None
    r1 = tcp_counters()
    for line in rest.splitlines():
        print("flood:", line, flush=True)
    time.sleep(0.5)  # and a few after it
    stop.set()
    for k in keepers:
        k.join(RT_TIMEOUT + 1)
    if wire:
        wire.join(1)

    for i, (ok, dt, why) in enumerate(out):
        seen = ""
        if wire:
            c = wire.ports.get(ports[i], [0, 0, 0, 0])
            seen = f"; on the wire: {c[0]} SYN out, {c[1]} SYN-ACK in, {c[2]} data out, {c[3]} in"
        print(f"client {i + 1}: {'served' if ok else 'FAILED'} in {dt * 1000:.0f} ms ({why}){seen}")
        if wire and not ok:
            names = {0x02: "SYN", 0x12: "SYN-ACK", 0x10: "ACK", 0x18: "PSH-ACK", 0x11: "FIN-ACK",
                     0x04: "RST", 0x14: "RST-ACK"}
            for t, d, fl, seq, ack, n in wire.trace.get(ports[i], []):
                print(f"  client {i + 1} +{(t - starts[i]) * 1000:5.0f} ms {d:3} "
                      f"{names.get(fl & 0x1f, hex(fl))} seq {seq} ack {ack} len {n}")
    served = sum(1 for ok, _, _ in out if ok)
    rts = sum(len(k.rts) for k in keepers)
    worst = max((d for k in keepers for _, d in k.rts), default=0.0)
    during = [sum(1 for t, _ in k.rts if f0 <= t <= f1) for k in keepers]
    fails = [f"keeper {k.i + 1}: {k.fail}" for k in keepers if k.fail or k.is_alive()]
    for f in fails:
        print("FAIL", f)
    print(f"keepers: {rts} round trips, {min(during)}..{max(during)} per keeper during the "
          f"{f1 - f0:.1f} s flood, worst {worst * 1000:.0f} ms")
    print(f"client side: {r1[0] - r0[0]} segments retransmitted during the flood, "
          f"{r1[1] - r0[1]} of them SYNs")
    extra = f" retrans={r1[0] - r0[0]} syn_retrans={r1[1] - r0[1]}"
    if s0 and s1:
        run, wait = (s1[0] - s0[0]) // 1000000, (s1[1] - s0[1]) // 1000000
        print(f"worker: on a CPU {run} ms of the {f1 - f0:.1f} s flood, waiting for one {wait} ms")
        extra += f" worker_run_ms={run} worker_wait_ms={wait}"
    if wire:
        print(f"ARP requests for the spoofed address: {wire.arp}")
        extra += f" arp_requests={wire.arp}"
    print(f"result served={served} clients={ncli} keeper_rt={rts}"
          f" keeper_worst_ms={worst * 1000:.0f} keeper_min_during={min(during)}"
          f" keeper_fail={len(fails)} clients_inside_flood={int(clients_done <= f1)}{extra}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
