#!/usr/bin/python3
"""The hostile sweep for t_sweep.sh: every TCP state by every combination of
FIN SYN RST PSH ACK URG (64) by every sequence and ACK edge, against a live
dpnet server (or client) on net_tap, from an AF_PACKET socket in the
namespace. Each frame goes to its own fresh connection, driven into the state
just before (a frame may change the state: the next one must not meet
another state than its label says). Frames go in chunks; after each chunk an
ICMP echo must come back (the barrier: dpnet handles a port's frames in
order, so the reply proves that every frame before it was taken in and the
server still answers).

Edges, relative to the live connection as the peer sees it (R = the server's
RCV.NXT, S = its SND.NXT, U = its SND.UNA, W = its advertised window,
MAXW = the largest window we advertised):
  seq: R, R+-1, R+-2, R+W-1, R+W, R+W+1, R-W, R+2^31 and +-1, +-2 around it
       (with ack = S)
  ack: S+-1, S+-2, U, U-1, U+1 (when U != S), U-MAXW, U-MAXW-1,
       S+2^31 and +-1 around it (with seq = R)
  both: seq R+2^31-1..+1 by ack S+1, U-MAXW-1, S+2^31
  each with a payload of 0, 1, 2 and 1000 bytes (the third group: 0).

  sweep.py server --state ST ... : one state; how each is reached:
      SYN_RCVD     our SYN answered, no ACK                     (echoserver)
      ESTABLISHED  16 B sent, their echo not acknowledged       (echoserver)
      CLOSE_WAIT   our window 0 from the SYN on, 4 x 1400 B and FIN: its
                   send buffer (tcp.sndbuf 4096, t_sweep.sh) takes 2, the
                   application holds 2, so it cannot close  (echoserver)
      LAST_ACK     16 B and FIN; its echo and FIN not acknowledged (echoserver)
      FIN_WAIT_1   HTTP/1.0 request; answer and FIN not acknowledged (httpd)
      FIN_WAIT_2   ... answer and FIN acknowledged              (httpd)
      CLOSING      ... our FIN, theirs not acknowledged         (httpd)
      TIME_WAIT    ... both FINs acknowledged                   (httpd)
      (echoserver never closes first: httpd does after an HTTP/1.0 answer.)
  sweep.py replay ... : the frames of a chunk after which the server died,
      one at a time, each followed by the barrier: names the frame.
  sweep.py client ... : SYN_SENT, with net_latency connecting to us.
  sweep.py rfc ... : the answers RFC 793/5961 prescribe (scapy, hostile.Conn).
  sweep.py keeper echo|http HOST PORT MAX_S: a Linux connection that echoes
      (or GETs /hello) every 50 ms; output as hostile.py keeper.

Prints "ok - " / "not ok - " lines and "# checks N frames M" at the end.
Every wait is bounded in time and every loop in count. Debugging:
SWEEP_FLAGS=19,27 sweeps only those flag combinations (FIN 1 SYN 2 RST 4
PSH 8 ACK 16 URG 32); SWEEP_DEBUG=1 names connections that missed the state."""
import argparse, json, os, random, re, select, signal, socket, struct, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = time.time()
M32 = 0xffffffff
FIN, SYN, RST, PSH, ACK, URG = 1, 2, 4, 8, 16, 32
FLAGS = list(range(64))
PAYLOADS = (0, 1, 2, 1000)
H31 = 1 << 31
CHUNK = 200  # frames between barriers: well below the tap's queue (1000)
MAXW = 65535  # the window we advertise (we send window scale 0)
STATS = {"pass": 0, "fail": 0, "frames": 0}
random.seed(os.getpid())
PAY = os.urandom(1400)


def note(msg):
    print(f"# [{time.time() - T0:6.1f}s] {msg}", flush=True)


def check(name, cond, why=""):
    STATS["pass" if cond else "fail"] += 1
    print(("ok - " if cond else "not ok - ") + name + (f"  # {why}" if why and not cond else ""),
          flush=True)
    return cond


def fstr(fl):
    s = "".join(ch for bit, ch in ((SYN, "S"), (ACK, "A"), (FIN, "F"), (RST, "R"), (PSH, "P"),
                                   (URG, "U")) if fl & bit)
    return s or "none"


# ------------------------------------------------------------- checksums --

def csum(b):
    """Internet checksum: the 16-bit one's complement sum is the big-endian
    integer mod 0xffff (2^16 = 1 mod 0xffff), with 0xffff for a non-zero
    multiple."""
    if len(b) & 1:
        b += b"\0"
    x = int.from_bytes(b, "big")
    r = x % 0xffff
    if r == 0 and x:
        r = 0xffff
    return ~r & 0xffff


# ------------------------------------------------------------------ wire --
ETH_P_ALL, SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 3, 263, 1, 1
PACKET_OUTGOING = 4


class Wire:
    """Frames to and from dpnet on the tap; remembers what it learns of each
    connection (by our port) from dpnet's segments."""

    def __init__(self, a):
        self.iface, self.dport = a.iface, a.port
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.s.bind((a.iface, 0))
        idx = socket.if_nametoindex(a.iface)
        self.s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP,
                          struct.pack("iHH8s", idx, PACKET_MR_PROMISC, 0, b""))
        self.s.setblocking(False)
        with open(f"/sys/class/net/{a.iface}/address") as f:
            self.mymac = bytes.fromhex(f.read().strip().replace(":", ""))
        if a.mac != "auto":  # auto: learnt from dpnet's first frame (client mode)
            self.eth = bytes.fromhex(a.mac.replace(":", "")) + self.mymac + b"\x08\x00"
        self.dip, self.pip = socket.inet_aton(a.dip), socket.inet_aton(a.pip)
        self.pid = a.pid
        self.conns = {}  # our port -> Conn
        self.ipid = 0
        self.icmp_id = random.randint(1, 0x7fff)
        self.echoed = set()
        self.dead = False

    def ip(self, proto, l4):
        self.ipid = (self.ipid + 1) & 0xffff
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), self.ipid, 0, 64, proto, 0,
                        self.pip, self.dip)
        return self.eth + h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4

    def tcp(self, sport, seq, ack, flags, win, payload=b"", opts=b"", urg=0, dport=None):
        seg = struct.pack("!HHIIBBHHH", sport, self.dport if dport is None else dport, seq & M32,
                          ack & M32, (20 + len(opts)) // 4 << 4, flags, win, 0, urg) + opts + payload
        c = csum(self.pip + self.dip + struct.pack("!BBH", 0, 6, len(seg)) + seg)
        return self.ip(6, seg[:16] + struct.pack("!H", c) + seg[18:])

    def echo_req(self, ident):
        icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"sweep-barrier"
        return self.ip(1, icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:])

    def send(self, frames):
        """False when the interface is gone (net_tap removes it when the
        server dies)."""
        for b in frames:
            for _ in range(200):
                try:
                    self.s.send(b)
                    break
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    self.dead = True
                    return False
            else:
                raise RuntimeError("AF_PACKET send blocked for 200 ms")
        return True

    def absorb(self, b):
        """Take in one frame from dpnet."""
        if len(b) < 34 or b[12:14] != b"\x08\x00" or b[26:30] != self.dip:
            return
        ihl = (b[14] & 15) * 4
        tot = b[16] << 8 | b[17]
        o = 14 + ihl
        if b[23] == 1 and len(b) >= o + 8 and b[o] == 0:
            self.echoed.add(b[o + 4] << 8 | b[o + 5])
            return
        if b[23] != 6 or len(b) < o + 20:
            return
        sport, dport, seq, ack, off, fl, win = struct.unpack_from("!HHIIBBH", b, o)
        c = self.conns.get(dport)
        if c is None or sport != c.rport:
            return
        plen = max(0, tot - ihl - (off >> 4) * 4)
        c.take(seq, ack, fl, win, plen, b[o + 20:o + (off >> 4) * 4])

    def pump(self, seconds, until=None):
        end = time.time() + seconds
        while True:
            if until is not None and until():
                return True
            left = end - time.time()
            if left <= 0:
                return until is None
            if self.dead:
                return False
            r, _, _ = select.select([self.s], [], [], min(left, 0.05))
            if not r:
                continue
            for _ in range(20000):
                try:
                    data, addr = self.s.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:
                    self.dead = True
                    return False
                if addr[2] != PACKET_OUTGOING:
                    self.absorb(data)

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def barrier(self):
        """True once dpnet has answered an ICMP echo sent after everything
        so far (two tries, 3 s in all)."""
        for wait in (1.0, 2.0):
            self.icmp_id = self.icmp_id % 0x7fff + 1
            ident = self.icmp_id
            if not self.send([self.echo_req(ident)]):
                return False
            if self.pump(wait, until=lambda: ident in self.echoed):
                self.echoed.discard(ident)
                return True
            if self.dead or not self.alive():
                return False
        return False

    def send_paced(self, frames):
        """All frames, a barrier after every CHUNK; False if one failed."""
        for i in range(0, len(frames), CHUNK):
            if not self.send(frames[i:i + CHUNK]) or not self.barrier():
                return False
        return True


# ------------------------------------------------- a crafted connection --
# server kinds: what makes the server close first (httpd: an HTTP/1.0 request)
HTTP_REQ = b"GET /hello HTTP/1.0\r\n\r\n"
OPTS = struct.pack("!BBHBBBB", 2, 4, 1460, 1, 3, 3, 0)  # MSS 1460, NOP, window scale 0


class Conn:
    """One connection, one sweep frame. Offsets of the server's sequence
    numbers are kept relative to its ISS (irs)."""
    __slots__ = ("sport", "rport", "iss", "irs", "wsc", "mywin", "R", "S", "U", "W", "smax", "rack",
                 "fin", "rst", "nseg", "win", "data", "case", "frame", "seq_sent", "after", "ok",
                 "maxw")

    def __init__(self, sport, rport, case, mywin=MAXW):
        self.sport, self.rport, self.case, self.mywin = sport, rport, case, mywin
        self.maxw = mywin  # MAX.SND.WND as the server knows it: our window never changes
        self.iss = random.getrandbits(32)
        self.irs = None
        self.wsc = 0
        self.R = (self.iss + 1) & M32
        self.S = self.U = self.W = 0
        self.smax = 0      # the server's highest sequence sent + 1, from irs
        self.rack = None   # the server's last ACK (its RCV.NXT)
        self.fin = self.rst = False
        self.nseg = self.win = self.data = self.after = 0
        self.frame, self.seq_sent, self.ok = None, None, False

    def take(self, seq, ack, fl, win, plen, opts):
        self.nseg += 1
        self.after += 1
        if fl & RST:
            self.rst = True
            return
        if fl & SYN and fl & ACK and self.irs is None:
            self.irs = seq
            i = 0
            while i < len(opts):  # the server's window scale
                k = opts[i]
                if k == 0:
                    break
                if k == 1:
                    i += 1
                    continue
                if i + 1 >= len(opts) or opts[i + 1] < 2:
                    break
                if k == 3 and opts[i + 1] == 3 and i + 2 < len(opts):
                    self.wsc = opts[i + 2]
                i += opts[i + 1]
        if self.irs is None:
            return
        end = (seq + plen + (1 if fl & SYN else 0) + (1 if fl & FIN else 0) - self.irs) & M32
        if end < H31:
            self.smax = max(self.smax, end)
            if fl & FIN:
                self.fin = True
        if plen and not fl & SYN:
            self.data = max(self.data, (seq + plen - self.irs - 1) & M32)
        if fl & ACK:
            self.rack = ack
        self.win = win if fl & SYN else win << self.wsc

    def seg(self, w, flags, payload=b"", seq=None, ack=None, win=None, opts=b""):
        return w.tcp(self.sport, self.R if seq is None else seq,
                     self.S if ack is None else ack, flags,
                     self.mywin if win is None else win, payload, opts)


# ------------------------------------------------------------------ edges --

def seq_edges(with_w=True):
    e = [("R", lambda c: c.R), ("R+1", lambda c: c.R + 1), ("R-1", lambda c: c.R - 1),
         ("R+2", lambda c: c.R + 2), ("R-2", lambda c: c.R - 2)]
    if with_w:
        e += [("R+W-1", lambda c: c.R + c.W - 1), ("R+W", lambda c: c.R + c.W),
              ("R+W+1", lambda c: c.R + c.W + 1), ("R-W", lambda c: c.R - c.W)]
    for d in (-2, -1, 0, 1, 2):
        e.append((f"R+2^31{d:+d}" if d else "R+2^31", lambda c, d=d: c.R + H31 + d))
    return e


def ack_edges(unacked, maxw=True):
    e = [("S+1", lambda c: c.S + 1), ("S-1", lambda c: c.S - 1), ("S+2", lambda c: c.S + 2),
         ("S-2", lambda c: c.S - 2)]
    if unacked:
        e += [("U", lambda c: c.U), ("U-1", lambda c: c.U - 1), ("U+1", lambda c: c.U + 1)]
    if maxw:
        e += [("U-MAXW", lambda c: c.U - c.maxw), ("U-MAXW-1", lambda c: c.U - c.maxw - 1)]
    for d in (-1, 0, 1):
        e.append((f"S+2^31{d:+d}" if d else "S+2^31", lambda c, d=d: c.S + H31 + d))
    return e


def unacked(state):
    """States where SND.UNA != SND.NXT (as our drivers leave them)."""
    return state in ("SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "FIN_WAIT_1", "CLOSING")


def make_cases(unacked):
    """(flags, seq edge, ack edge, payload) for one state, flags outermost."""
    se, ae = seq_edges(), ack_edges(unacked)
    sd, ad = dict(se), dict(ae)
    ad["S"] = lambda c: c.S
    per = [(s, "S", p) for s, _ in se for p in PAYLOADS]
    per += [("R", a, p) for a, _ in ae for p in PAYLOADS]
    per += [(s, a, 0) for s in ("R+2^31-1", "R+2^31", "R+2^31+1")
            for a in ("S+1", "U-MAXW-1", "S+2^31")]
    flags = FLAGS
    if os.environ.get("SWEEP_FLAGS"):  # debugging: some flag combinations only
        flags = [int(x, 0) for x in os.environ["SWEEP_FLAGS"].split(",")]
    return [(fl, s, a, p) for fl in flags for s, a, p in per], sd, ad, len(per)


def build_frame(w, c, sd, ad):
    fl, s, a, p = c.case
    seq, ack = sd[s](c) & M32, ad[a](c) & M32
    c.seq_sent = seq
    pay = PAY[:p]
    c.frame = w.tcp(c.sport, seq, ack, fl, c.mywin, pay, urg=max(p, 1) if fl & URG else 0)
    c.after = 0
    return c.frame


def case_str(state, c):
    fl, s, a, p = c.case
    return (f"{state} {fstr(fl)} seq={s} ack={a} payload {p} "
            f"(R={c.R} S={c.S} U={c.U} W={c.W} sport {c.sport})")


# --------------------------------------------------------------- drivers --

class Sweeper:
    def __init__(self, a):
        self.a = a
        self.w = Wire(a)
        self.ports = list(range(a.port_lo, a.port_hi + 1))
        random.shuffle(self.ports)

    def new_conns(self, cases, mywin=MAXW):
        if len(self.ports) < len(cases):
            raise RuntimeError("out of source ports for the sweep")
        out = []
        for case in cases:
            c = Conn(self.ports.pop(), self.a.port, case, mywin)
            self.w.conns[c.sport] = c
            out.append(c)
        return out

    def forget(self, conns):
        for c in conns:
            self.w.conns.pop(c.sport, None)

    def handshake(self, conns, ack=True, group=CHUNK):
        """SYN, SYN-ACK (and our ACK) in groups of group connections: at most
        that many half-open at once (the listener's backlog is 255)."""
        w = self.w
        for i in range(0, len(conns), group):
            g = conns[i:i + group]
            if not w.send([c.seg(w, SYN, seq=c.iss, ack=0, opts=OPTS) for c in g]) or not w.barrier():
                return False
            w.pump(0.5, until=lambda: all(c.irs is not None for c in g))
            for c in g:
                if c.irs is not None:
                    c.S, c.U = (c.irs + 1) & M32, c.irs
                    c.W = c.win
            if ack and not w.send([c.seg(w, ACK) for c in g if c.irs is not None]):
                return False
            if ack:
                for c in g:
                    c.U = c.S
        return w.barrier()

    def drive(self, state, conns):
        """Bring conns into state; c.ok tells which got there. False: the
        server stopped answering."""
        w = self.w
        if state == "SYN_RCVD":
            if not self.handshake(conns, ack=False):
                return False
            for c in conns:
                c.ok = c.irs is not None and not c.rst
            return True
        if not self.handshake(conns):
            return False
        live = [c for c in conns if c.irs is not None and not c.rst]
        if state == "ESTABLISHED":
            # 16 bytes echoed and not acknowledged: SND.UNA < SND.NXT
            if not w.send_paced([c.seg(w, PSH | ACK, PAY[:16]) for c in live]):
                return False
            w.pump(1.0, until=lambda: all(c.smax >= 17 for c in live))
            for c in live:
                c.R = (c.R + 16) & M32
                c.ok = c.smax == 17 and not c.fin and not c.rst and c.rack == c.R
        elif state == "CLOSE_WAIT":
            # Our window is 0 (from the SYN on): echoserver's send buffer
            # (4096) takes 2 of the 4 segments, 2 wait in the application,
            # so our FIN leaves it in CLOSE_WAIT (no FIN of its own).
            fr = []
            for c in live:
                for k in range(4):
                    fr.append(c.seg(w, PSH | ACK, PAY[:1400], seq=c.R + 1400 * k))
                c.R = (c.R + 5600) & M32
                fr.append(c.seg(w, FIN | ACK))
                c.R = (c.R + 1) & M32
            if not w.send_paced(fr):
                return False
            w.pump(1.0, until=lambda: all(c.rack == c.R for c in live))
            for c in live:
                c.ok = c.rack == c.R and not c.fin and not c.rst
        elif state == "LAST_ACK":
            fr = []
            for c in live:
                fr.append(c.seg(w, FIN | PSH | ACK, PAY[:16]))
                c.R = (c.R + 17) & M32
            if not w.send_paced(fr):
                return False
            w.pump(1.0, until=lambda: all(c.fin for c in live))
            for c in live:
                c.ok = c.fin and c.smax == 18 and c.rack == c.R and not c.rst
        else:  # httpd: the request, its answer and the server's FIN
            fr = []
            for c in live:
                fr.append(c.seg(w, PSH | ACK, HTTP_REQ))
                c.R = (c.R + len(HTTP_REQ)) & M32
            if not w.send_paced(fr):
                return False
            w.pump(1.5, until=lambda: all(c.fin or c.rst for c in live))
            live = [c for c in live if c.fin and not c.rst and c.rack == c.R]
            for c in live:
                c.S = (c.irs + c.smax) & M32
            fr = []
            if state in ("FIN_WAIT_2", "TIME_WAIT"):
                for c in live:
                    fr.append(c.seg(w, ACK))
                    c.U = c.S
            if state in ("CLOSING", "TIME_WAIT"):
                for c in live:
                    fr.append(c.seg(w, FIN | ACK, ack=c.U))  # CLOSING: our FIN, theirs unacked
                    c.R = (c.R + 1) & M32
            if fr and not w.send_paced(fr):
                return False
            if state in ("CLOSING", "TIME_WAIT"):
                w.pump(1.0, until=lambda: all(c.rack == c.R for c in live))
            for c in live:
                c.ok = c.rack == c.R and not c.rst
            return True
        if state in ("ESTABLISHED", "CLOSE_WAIT", "LAST_ACK"):
            for c in live:  # the server's view, from its own segments
                c.S = (c.irs + c.smax) & M32
                c.W = c.win
        return True

    def cleanup(self, conns):
        """End every connection with an exact RST (candidates: the server's
        last ACK, R, R plus what the frame carried). TIME_WAIT ignores RSTs
        (RFC 1337) and ends by itself."""
        fr = []
        for c in conns:  # (a RST from the server does not mean it let go: SYN_RCVD)
            fl, _, _, p = c.case
            cand = []
            for s in (c.rack if c.after and c.rack is not None else None, c.R,
                      c.R + p + (fl & SYN and 1) + (fl & FIN and 1),
                      (c.seq_sent + 1) if fl & SYN and c.seq_sent is not None else None):
                if s is not None and (s & M32) not in cand:
                    cand.append(s & M32)
            fr += [c.seg(self.w, RST, seq=s, ack=0) for s in cand[:3]]
        return self.w.send_paced(fr)

    def sweep(self, state, batch, start=0):
        """Every case of state from start on, each on its own connection.
        Returns (frames sent, cases whose connection did not reach the
        state, the crash record or None)."""
        cases, sd, ad, per = make_cases(unacked(state))
        pos = {k: i for i, k in enumerate(cases)}

        def crash(during, conns):
            return {"state": state, "during": during, "cases": [c.case for c in conns],
                    "resume": max(pos[c.case] for c in conns) + 1}
        cases = cases[start:]
        if state == "SYN_RCVD":
            batch = min(batch, CHUNK)  # all half-open at once: the listener's backlog is 255
        note(f"{state}: {len(cases)} cases ({per} edges by 64 flag combinations"
             + (f", from case {start}" if start else "") + f"), batches of {batch}")
        mywin = 0 if state == "CLOSE_WAIT" else MAXW
        sent, missed, todo, tries = 0, [], list(cases), 0
        while todo and tries < 2:
            tries += 1
            left = []
            for i in range(0, len(todo), batch):
                conns = self.new_conns(todo[i:i + batch], mywin)
                if not self.drive(state, conns):
                    return sent, missed + left, crash("driving", conns)
                ok = [c for c in conns if c.ok]
                left += [c.case for c in conns if not c.ok]
                if os.environ.get("SWEEP_DEBUG"):
                    for c in conns:
                        if not c.ok:
                            note(f"not reached: sport {c.sport} irs {c.irs} fin {c.fin} rst {c.rst} "
                                 f"smax {c.smax} rack {c.rack} R {c.R} nseg {c.nseg}")
                frames = [build_frame(self.w, c, sd, ad) for c in ok]
                for k in range(0, len(ok), CHUNK):
                    if not self.w.send(frames[k:k + CHUNK]) or not self.w.barrier():
                        bad = ok[k:k + CHUNK]
                        note(f"{state}: no answer after a chunk of {len(bad)} frames; "
                             f"the first {case_str(state, bad[0])}")
                        return sent, missed, crash("sweep", bad)
                    sent += len(frames[k:k + CHUNK])
                self.w.pump(0.05)
                if not self.cleanup(conns):
                    return sent, missed, crash("cleanup", conns)
                self.forget(conns)
            todo = left
            if left:
                note(f"{state}: {len(left)} connections did not reach the state; trying again")
        return sent, todo, None


# ------------------------------------------------------- liveness checks --

def keeper_rounds(klog):
    n = 0
    try:
        with open(klog) as f:
            for line in f:
                if line.startswith("rt "):
                    n = int(line.split()[1])
                elif line.startswith("FAIL"):
                    return -1
    except OSError:
        pass
    return n


def keeper_alive(klog, what, need=3, seconds=8):
    n0 = keeper_rounds(klog)
    end = time.time() + seconds
    while time.time() < end and n0 >= 0:
        n = keeper_rounds(klog)
        if n < 0:
            break
        if n >= n0 + need:
            return check(f"{what}: keeper still echoes (round {n})", True)
        time.sleep(0.05)
    return check(f"{what}: keeper still echoes", False,
                 f"keeper rounds {n0} -> {keeper_rounds(klog)} (-1: keeper failed)")


def http_get(s, keep):
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: dpnet\r\n" + (b"" if keep else b"Connection: close\r\n")
              + b"\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 8192:
        d = s.recv(4096)
        if not d:
            raise OSError("connection closed by the server")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            raise OSError("connection closed in the body")
        body += d
    if not head.startswith(b"HTTP/1.1 200") or body != b"Hello, world!\n":
        raise OSError(f"unexpected answer {head[:40]!r} {body[:40]!r}")


def fresh(kind, host, port, timeout=3.0):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.settimeout(timeout)
        if kind == "http":
            http_get(s, False)
            s.close()
            return True, ""
        msg = os.urandom(1000)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(4096)
            if not d:
                break
            got += d
        s.close()
        return got == msg, f"echo {len(got)} of {len(msg)} B"
    except OSError as e:
        return False, repr(e)


def keeper(kind, host, port, max_s):
    if kind == "echo":
        sys.path.insert(0, HERE)
        import hostile
        return hostile.keeper(host, port, max_s)
    stop = []
    signal.signal(signal.SIGUSR1, lambda *a: stop.append(1))
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"port {s.getsockname()[1]}", flush=True)
    s.settimeout(5)
    n, t_end, worst = 0, time.time() + max_s, 0.0
    while not stop and time.time() < t_end:
        t = time.time()
        try:
            http_get(s, True)
        except OSError as e:
            print(f"FAIL round {n + 1}: {e!r} at {time.time():.3f}", flush=True)
            sys.exit(1)
        worst = max(worst, time.time() - t)
        n += 1
        print(f"rt {n}", flush=True)
        time.sleep(0.05)
    s.close()
    print(f"keeper: {n} requests answered, slowest {worst * 1000:.0f} ms", flush=True)


# ---------------------------------------------------------------- modes --

def mode_server(a):
    sw = Sweeper(a)
    if not check("server answers before the sweep", sw.w.barrier()):
        return 2
    t = time.time()
    sent, missed, crash = sw.sweep(a.state, a.batch, a.start)
    dt = time.time() - t
    STATS["frames"] += sent
    cases, _, _, per = make_cases(unacked(a.state))
    n = len(cases) - a.start
    part = f", cases {a.start}..{len(cases) - 1} of {len(cases)} after a restart" if a.start else ""
    if crash is not None:
        with open(a.crash_file, "w") as f:
            json.dump(crash, f)
        check(f"{a.state}: server answers throughout the sweep ({sent} frames sent before it "
              f"stopped answering{part})", False,
              f"during {crash['during']}; server {'alive' if sw.w.alive() else 'gone'}; "
              f"chunk of {len(crash['cases'])} saved for replay")
        return 3
    check(f"{a.state}: server answers throughout the sweep ({sent} frames: 64 flag "
          f"combinations x {per} edges, each on a fresh connection, in {dt:.1f} s{part})",
          sent + len(missed) == n)
    check(f"{a.state}: every connection reached {a.state} before its frame "
          f"({n - len(missed)} of {n})", not missed, f"{len(missed)} did not, e.g. {missed[:3]}")
    keeper_alive(a.keeper_log, a.state)
    ok, why = fresh(a.kind, a.dip, a.port)
    check(f"{a.state}: a fresh Linux connection " + ("gets /hello" if a.kind == "http" else "echoes"),
          ok, why)
    return 0


def mode_replay(a):
    """The chunk after which the server died, one frame (and connection) at
    a time with a barrier after each: the first without an answer is it."""
    with open(a.crash_file) as f:
        crash = json.load(f)
    sw = Sweeper(a)
    if not sw.w.barrier():
        print("# replay: the restarted server does not answer", flush=True)
        return 2
    st = crash["state"]
    _, sd, ad, _ = make_cases(unacked(st))
    for i, case in enumerate(crash["cases"]):
        case = tuple(case)
        conns = sw.new_conns([case], 0 if st == "CLOSE_WAIT" else MAXW)
        if not sw.drive(st, conns):
            print(f"# replay: server died while driving a connection into {st}", flush=True)
            return 3
        c = conns[0]
        if not c.ok:
            continue
        sw.w.send([build_frame(sw.w, c, sd, ad)])
        if not sw.w.barrier():
            print(f"# replay: the server stopped answering after frame {i + 1} of "
                  f"{len(crash['cases'])}: {case_str(st, c)}", flush=True)
            print(f"# replay: frame {c.frame.hex()}", flush=True)
            with open(a.crash_file + ".frame", "w") as f:
                f.write(case_str(st, c) + "\n")
            return 3
        sw.cleanup(conns)
        sw.forget(conns)
    print(f"# replay: {len(crash['cases'])} frames one at a time: the server answered after "
          f"each (not reproduced alone)", flush=True)
    return 0


def mode_client(a):
    """SYN_SENT: net_latency (dpnet) connects to us; no RCV.NXT yet, so seq
    is a random number R (and R+2^31); ack edges are around S = ISS+1. Each
    of its connections takes many frames, all that leave it in SYN_SENT:
    lwIP answers an ACK other than ISS+1 with RST and resends its SYN at once,
    which counts against TCP_SYNMAXRTX (4), so a connection takes at most 2
    of those (and they get seq R only). An RST or a SYN-ACK with ack ISS+1
    ends SYN_SENT, and net_latency's whole run (it stops at a failed
    connection, or at data it did not ask for): one RST is sent, at the end."""
    w = Wire(a)
    syns = {}
    end = time.time() + 15
    while time.time() < end and len(syns) < a.conns:  # dpnet's SYNs, by its port
        r, _, _ = select.select([w.s], [], [], 0.05)
        for _ in range(5000 if r else 0):
            try:
                b, addr = w.s.recvfrom(65536)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING or len(b) < 54 or b[12:14] != b"\x08\x00" or b[23] != 6:
                continue
            o = 14 + (b[14] & 15) * 4
            sport, dport, seq, _, _, fl = struct.unpack_from("!HHIIBB", b, o)
            if dport == a.port and fl & (SYN | ACK) == SYN and sport not in syns:
                syns[sport] = seq
                w.eth = b[6:12] + w.mymac + b"\x08\x00"
    t_syn = time.time()
    check(f"SYN_SENT: net_latency's {a.conns} SYNs seen", len(syns) == a.conns,
          f"{len(syns)} seen in 15 s")
    if not syns:
        return 2
    se = [("R", lambda c: c.R), ("R+2^31", lambda c: c.R + H31)]
    ae = [("S", lambda c: c.S), ("0", lambda c: 0)] + ack_edges(False, maxw=False)
    sd, ad = dict(se), dict(ae)

    def ends(fl, an):  # leaves SYN_SENT
        return an == "S" and (fl & RST or (fl & SYN and fl & ACK))

    def heavy(fl):  # answered with RST and a SYN retransmission
        return fl & ACK and not fl & RST
    cases, last = [], 0
    for fl in FLAGS:
        for s, _ in se:
            for an, _ in ae:
                for p in PAYLOADS:
                    if ends(fl, an):
                        last += s == "R"
                    elif not (heavy(fl) and s != "R"):
                        cases.append((fl, s, an, p))
    conns = []
    for p in sorted(syns):
        c = Conn(a.port, p, None)
        c.S, c.U, c.R = (syns[p] + 1) & M32, syns[p], random.getrandbits(32)
        conns.append([c, []])
    hv = [k for k in cases if heavy(k[0])]
    lt = [k for k in cases if not heavy(k[0])]
    if len(hv) > 2 * len(conns):
        note(f"SYN_SENT: {len(conns)} connections take {2 * len(conns)} of the {len(hv)} "
             "ACK-bearing frames; the rest is left out")
        hv = hv[:2 * len(conns)]
    for i, k in enumerate(hv):
        conns[i // 2][1].append(k)
    for i, k in enumerate(lt):
        conns[i % len(conns)][1].append(k)
    frames = []
    for c, ks in conns:
        for fl, s, an, p in ks:
            frames.append(w.tcp(a.port, sd[s](c), ad[an](c), fl, MAXW, PAY[:p],
                                urg=max(p, 1) if fl & URG else 0, dport=c.rport))
    random.shuffle(frames)  # connections side by side, as from many peers
    t = time.time()
    ok = w.send_paced(frames)
    dt = time.time() - t
    STATS["frames"] += len(frames) if ok else 0
    check(f"SYN_SENT: dpnet answers throughout ({len(frames)} frames: 64 flag combinations x "
          f"{len(ae)} ACK edges x 2 seq x 4 payloads, less {last} that end SYN_SENT, "
          f"and seq R only for ACK-bearing ones; on {len(conns)} connections, "
          f"{dt:.1f} s, {t - t_syn:.1f} s after the SYNs)", ok)
    if not ok:
        return 3
    # The end: an RST with ack = ISS+1 is acceptable in SYN_SENT (RFC 793):
    # the connection fails and net_latency stops with its error.
    c = conns[0][0]
    w.send([w.tcp(a.port, c.R, c.S, RST | ACK, MAXW, dport=c.rport)])
    STATS["frames"] += 1
    return 0


def mode_rfc(a):
    """The answers RFC 793 and RFC 5961 prescribe (the TCP input guard of
    issue 13), each on a fresh connection (per-connection rate limit:
    500 ms), after a pause (per-worker limit: 1000 a second). The issue's
    own frame comes last: today it stops the server."""
    sys.path.insert(0, HERE)
    import hostile
    from hostile import Conn as HConn, pure_ack
    from scapy.all import TCP
    time.sleep(1.2)
    c = hostile.Ctx([a.iface, a.mac, a.dip, a.pip, str(a.port), "9", a.keeper_log,
                     str(a.port_lo - 1)])

    def conn():
        x = HConn(c)
        if not x.handshake():
            raise OSError("no SYN-ACK to a fresh connection")
        x.pump(0.05)
        return x

    def half_open():  # SYN_RCVD: our SYN answered, no ACK yet
        x = HConn(c)
        x.w.drain()
        x.send("S", opts=[("MSS", 1460), ("WScale", 0)])
        x.pump(0.5, until=lambda: any(p[TCP].flags == "SA" for p in x.segs))
        sa = [p for p in x.segs if p[TCP].flags == "SA"]
        if not sa:
            raise OSError("no SYN-ACK to a fresh connection")
        x.seq, x.rcv = (x.iss + 1) & M32, (sa[0][TCP].seq + 1) & M32
        return x

    def segs(x, k):  # what the server sent: flags and ACK relative to our next seq
        return [f"{p[TCP].flags}/ack {((p[TCP].ack - x.seq + H31) & M32) - H31:+d}"
                for p in x.since(k)]

    def acks_rcv_nxt(x, k):
        return [p for p in x.since(k) if pure_ack(p) and p[TCP].ack == x.seq]

    def echo_after(x, what):
        return x.echo(f"after {what}".encode(), 2.0)

    def t_beyond(x):
        k = len(x.segs)
        x.send("PA", seq=x.seq + x.peer_win + 4000, payload=b"BEYOND")
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        ok, why = echo_after(x, "data beyond the window")
        return bool(ch) and ok and b"BEYOND" not in x.data, f"{segs(x, k)}; {why}"

    def t_old(x):
        x.echo(b"0123456789" * 10)
        x.pump(0.6)
        k = len(x.segs)
        x.send("PA", seq=x.seq - 60, payload=b"x" * 50)
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        ok, why = echo_after(x, "old data")
        return bool(ch) and ok, f"{segs(x, k)}; {why}"

    def t_rst_in(x):
        k = len(x.segs)
        x.send("R", seq=x.seq + 100)
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        ok, why = echo_after(x, "RST in the window")
        return bool(ch) and ok, f"{segs(x, k)}; {why}"

    def t_rst_out(x):
        k = len(x.segs)
        x.send("R", seq=x.seq + H31)
        x.pump(0.3)
        quiet = not x.since(k)
        ok, why = echo_after(x, "RST outside the window")
        return quiet and ok, f"{segs(x, k)}; {why}"

    def t_rst_exact(x):
        x.send("R")
        x.pump(0.2)
        k = len(x.segs)
        x.send("PA", payload=b"after the reset")
        x.pump(0.5, until=lambda: any(p[TCP].flags.R for p in x.since(k)))
        return any(p[TCP].flags.R for p in x.since(k)), f"{segs(x, k)}"

    def t_syn(off):
        def f(x):
            k = len(x.segs)
            x.send("S", seq=x.seq + off, ack=0)
            x.pump(0.3)
            rs = [p for p in x.since(k) if p[TCP].flags.R]
            ch = acks_rcv_nxt(x, k)
            ok, why = echo_after(x, "SYN")
            return bool(ch) and not rs and ok, f"{segs(x, k)}; {why}"
        return f

    def t_ack_future(x):
        k = len(x.segs)
        x.send("PA", ack=x.rcv + 100000, payload=b"ACKS-THE-FUTURE")
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        ok, why = echo_after(x, "an ACK of the future")
        return (bool(ch) and ok and b"FUTURE" not in x.data,
                f"{segs(x, k)}; {why}")

    def t_ack_past(x):
        k = len(x.segs)
        x.send("PA", ack=x.rcv - 0x20000, payload=b"ACKS-THE-PAST")
        x.pump(0.3)
        ok, why = echo_after(x, "an ACK of the past")
        return ok and b"PAST" not in x.data, f"{segs(x, k)}; {why}"

    def t_no_ack(x):
        k = len(x.segs)
        x.send("P", payload=b"NO-ACK-FLAG")
        x.pump(0.3)
        ok, why = echo_after(x, "data without ACK")
        return ok and b"NO-ACK" not in x.data, f"{segs(x, k)}; {why}"

    def t_ratelimit(flags, off):  # 20 segments in 100 ms
        def f(x):
            k = len(x.segs)
            for i in range(20):
                x.send(flags, seq=x.seq + off + i)
                time.sleep(0.005)
            x.pump(0.3)
            n = len([p for p in x.since(k) if pure_ack(p)])
            ok, why = echo_after(x, "20 segments")
            return n <= 2 and ok, f"{n} ACKs; {why}"
        return f

    def t_last_ack(x):
        x.send("FA")
        x.seq = (x.seq + 1) & M32
        x.pump(0.5, until=lambda: any(p[TCP].flags.F for p in x.segs))
        if not any(p[TCP].flags.F for p in x.segs):
            return False, "the server did not close"
        x.pump(0.6)  # past the per-connection limit
        k = len(x.segs)
        x.send("PA", payload=b"AFTER-OUR-FIN")
        x.pump(0.3)
        return bool(acks_rcv_nxt(x, k)), f"{segs(x, k)}"

    def t_rcvd_rexmit(x):
        n0 = len([p for p in x.segs if p[TCP].flags == "SA"])
        x.send("S", seq=x.iss, ack=0, opts=[("MSS", 1460), ("WScale", 0)])
        x.pump(0.3)
        n1 = len([p for p in x.segs if p[TCP].flags == "SA"])
        return n1 > n0, f"SYN-ACKs {n0} then {n1}"

    def t_rcvd_rst_exact(x):
        x.send("R")
        x.pump(0.2)
        k = len(x.segs)
        x.send("A")
        x.pump(0.4, until=lambda: any(p[TCP].flags.R for p in x.since(k)))
        return any(p[TCP].flags.R for p in x.since(k)), f"{segs(x, k)}"

    def t_rcvd_rst_in(x):
        k = len(x.segs)
        x.send("R", seq=x.seq + 5)
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        x.send("A")
        ok, why = echo_after(x, "RST in the window")
        return bool(ch) and ok, f"{segs(x, k)}; {why}"

    def t_issue(x):
        k = len(x.segs)
        x.send("SFA", seq=x.seq + H31)
        x.pump(0.3)
        ch = acks_rcv_nxt(x, k)
        alive = c.ping()
        x.send("A")
        ok, why = echo_after(x, "the issue's frame")
        return alive and bool(ch) and ok, f"server {'answers' if alive else 'GONE'}; " \
                                          f"{segs(x, k)}; {why}"

    E, H = conn, half_open
    tests = [
        ("ESTABLISHED: data beyond the window gets an ACK of RCV.NXT and is not delivered",
         E, t_beyond),
        ("ESTABLISHED: old data (left of RCV.NXT) gets an ACK of RCV.NXT", E, t_old),
        ("ESTABLISHED: RST in the window, seq != RCV.NXT, gets a challenge ACK; connection echoes",
         E, t_rst_in),
        ("ESTABLISHED: RST outside the window is dropped silently; connection echoes", E, t_rst_out),
        ("ESTABLISHED: RST with seq == RCV.NXT resets (data then gets RST)", E, t_rst_exact),
        ("ESTABLISHED: SYN in the window gets a challenge ACK, no RST; connection echoes",
         E, t_syn(10)),
        ("ESTABLISHED: SYN at RCV.NXT gets a challenge ACK, no RST; connection echoes", E, t_syn(0)),
        ("ESTABLISHED: SYN at RCV.NXT+2^31 gets an ACK, no RST; connection echoes", E, t_syn(H31)),
        ("ESTABLISHED: data acknowledging beyond SND.NXT gets an ACK and is dropped (RFC 5961 5.2)",
         E, t_ack_future),
        ("ESTABLISHED: data acknowledging below SND.UNA - MAX.SND.WND is dropped (RFC 5961 5.2)",
         E, t_ack_past),
        ("ESTABLISHED: data without the ACK flag is dropped (RFC 793)", E, t_no_ack),
        ("ESTABLISHED: 20 out-of-window pure ACKs in 100 ms get at most 2 ACKs (per-connection "
         "limit, as Linux's tcp_invalid_ratelimit)", E, t_ratelimit("A", 0x40000000)),
        ("ESTABLISHED: 20 in-window RSTs, seq != RCV.NXT, in 100 ms get at most 2 challenge ACKs "
         "(RFC 5961 7)", E, t_ratelimit("R", 1000)),
        ("LAST_ACK: data past RCV.NXT gets an ACK of RCV.NXT and is dropped", E, t_last_ack),
        ("SYN_RCVD: a retransmitted SYN gets the SYN-ACK again", H, t_rcvd_rexmit),
        ("SYN_RCVD: RST with seq == RCV.NXT removes the half-open connection", H, t_rcvd_rst_exact),
        ("SYN_RCVD: RST in the window, seq != RCV.NXT, gets a challenge ACK; "
         "the connection completes and echoes", H, t_rcvd_rst_in),
        ("SYN_RCVD: SYN|FIN|ACK with seq ISN+1+2^31 (issue 13) gets an ACK; "
         "the connection completes and echoes", H, t_issue),
    ]
    w = Wire(a)
    for name, mk, fn in tests:
        if not w.alive():
            check(f"RFC {name}", False, "the server is gone")
            continue
        try:
            x = mk()
            good, why = fn(x)
            x.reset()
        except OSError as e:
            good, why = False, repr(e)
        check(f"RFC {name}", good, why)
    try:
        alive = w.alive() and c.ping()
    except OSError:
        alive = False
    check("RFC checks: server answers ping afterwards", alive)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "replay", "client", "rfc", "keeper"])
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--iface")
    ap.add_argument("--mac")
    ap.add_argument("--dip")
    ap.add_argument("--pip")
    ap.add_argument("--port", type=int, default=7)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--keeper-log", default="")
    ap.add_argument("--kind", default="echo", choices=["echo", "http"])
    ap.add_argument("--state")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--crash-file", default="")
    ap.add_argument("--port-lo", type=int, default=1025)
    ap.add_argument("--port-hi", type=int, default=48999)
    ap.add_argument("--conns", type=int, default=300)
    a = ap.parse_args()
    if a.mode == "keeper":
        kind, host, port, max_s = a.rest
        keeper(kind, host, int(port), float(max_s))
        return 0
    try:
        rc = {"server": mode_server, "replay": mode_replay, "client": mode_client,
              "rfc": mode_rfc}[a.mode](a)
    except Exception:  # a harness error: say so, never pass for a sweep
        import traceback
        traceback.print_exc(file=sys.stdout)
        check(f"{a.mode} {a.state or ''}: harness ran without error", False)
        rc = 4
    print(f"# checks {STATS['pass'] + STATS['fail']} frames {STATS['frames']}", flush=True)
    return rc if rc else (1 if STATS["fail"] else 0)


if __name__ == "__main__":
    sys.exit(main())
