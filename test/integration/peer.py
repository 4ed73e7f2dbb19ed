#!/usr/bin/python3
"""Linux-side peer for integration tests: drives real sockets against a dpnet
echo server and exits non-zero (with a reason) when anything is wrong."""
import hashlib, os, resource, selectors, socket, struct, sys, threading, time


def fail(msg):
    print("# FAIL:", msg)
    sys.exit(1)


def bulk(host, port, nbytes, timeout=120):
    """Send nbytes of random data, half-close, expect the same bytes back then EOF."""
    data = os.urandom(nbytes)
    s = socket.create_connection((host, port), timeout=10)
    s.settimeout(timeout)
    err = []

    def writer():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer)
    t.start()
    got = bytearray()
    t0 = time.time()
    while True:
        chunk = s.recv(1 << 18)
        if not chunk:
            break
        got += chunk
    t.join()
    s.close()
    if err:
        fail(f"send failed: {err[0]}")
    if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        fail(f"echo differs: sent {len(data)} B, got {len(got)} B")
    dt = time.time() - t0
    print(f"# bulk {nbytes} B echoed intact in {dt:.2f} s ({nbytes * 8 / dt / 1e6:.0f} Mbit/s each way)")


def concurrent(host, port, n, rounds=3):
    """Open n connections at once, echo a distinct message on each, several rounds."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_WRITE, i)
    pending = set(range(n))
    deadline = time.time() + 60
    while pending and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(f"connection {key.data} failed: {os.strerror(err)}")
            sel.unregister(key.fileobj)
            pending.discard(key.data)
    if pending:
        fail(f"{len(pending)} of {n} connections never completed")
    for r in range(rounds):
        want = {}
        for i, s in enumerate(socks):
            msg = struct.pack("!II", i, r) + b"x" * (i % 200)
            want[i] = msg
            s.setblocking(True)
            s.sendall(msg)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
        got = {i: b"" for i in range(n)}
        left = set(range(n))
        deadline = time.time() + 60
        while left and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                i = key.data
                got[i] += key.fileobj.recv(4096)
                if len(got[i]) >= len(want[i]):
                    sel.unregister(key.fileobj)
                    left.discard(i)
        if left:
            fail(f"round {r}: {len(left)} connections got no complete echo")
        bad = [i for i in range(n) if got[i] != want[i]]
        if bad:
            fail(f"round {r}: wrong echo on {len(bad)} connections (first {bad[0]})")
    for s in socks:
        s.close()
    print(f"# {n} concurrent connections x {rounds} rounds echoed correctly")


def halfclose(host, port):
    """Half-close: data sent before our FIN is echoed, then the server's FIN."""
    s = socket.create_connection((host, port), timeout=10)
    msg = os.urandom(50000)
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        got += c
    s.close()
    if got != msg:
        fail(f"half-close: got {len(got)} of {len(msg)} bytes back before EOF")
    print("# half-close: all data echoed, then FIN")


def rst(host, port):
    """A client reset mid-stream must not disturb the server; a fresh
    connection still echoes."""
    for _ in range(20):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"y" * 3000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"after-reset")
    if s.recv(100) != b"after-reset":
        fail("no echo after resets")
    s.close()
    print("# 20 resets absorbed, server still echoes")


def refused(host, port):
    """A port nobody listens on answers with RST (connection refused)."""
    try:
        socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        print("# closed port refused")
        return
    except OSError as e:
        fail(f"closed port: expected refusal, got {e}")
    fail("closed port accepted a connection")


def hold(host, port):
    """Hold an echoing connection open until the server ends it (its
    shutdown must close connections, not leave the peer hanging)."""
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"held")
    if s.recv(100) != b"held":
        fail("no echo on the held connection")
    print("# holding", flush=True)
    s.settimeout(30)
    try:
        rest = s.recv(100)
    except ConnectionResetError:
        rest = b""
    except socket.timeout:
        fail("server shut down without closing the held connection")
    if rest:
        fail(f"unexpected data {rest!r}")
    print("# held connection closed by the server's shutdown")


def udp(host, port, maxsize=1472):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(0.5)
    for n in range(1, maxsize + 1):
        msg = os.urandom(n)
        for attempt in range(4):
            u.sendto(msg, (host, port))
            try:
                d, a = u.recvfrom(4096)
            except socket.timeout:
                continue
            if d != msg:
                fail(f"udp size {n}: echo differs")
            break
        else:
            fail(f"udp size {n}: no echo after 4 tries")
    print(f"# udp sizes 1..{maxsize} echoed")


def keeper(host, port, seconds):
    """One connection echoing a fresh message every 20 ms for `seconds`:
    proves it keeps working while other things happen to the host."""
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(2)
    print("# keeper connected", flush=True)
    n, end = 0, time.time() + seconds
    while time.time() < end:
        msg = os.urandom(32)
        try:
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    fail(f"keeper: connection closed after {n} round trips")
                got += chunk
        except OSError as e:
            fail(f"keeper: {e} after {n} round trips")
        if got != msg:
            fail(f"keeper: echo differs after {n} round trips")
        n += 1
        time.sleep(0.02)
    s.close()
    print(f"# keeper: {n} round trips, all echoed")


def unreach(host, port):
    """A closed UDP port answers ICMP port unreachable (ECONNREFUSED here)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((host, port))
    u.settimeout(1)
    for _ in range(3):
        u.send(b"anyone?")
        try:
            u.recv(100)
            fail("closed UDP port answered")
        except ConnectionRefusedError:
            print("# port unreachable received")
            return
        except socket.timeout:
            continue
    fail("no ICMP port unreachable for a closed UDP port")


if __name__ == "__main__":
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rest = [int(x) for x in sys.argv[4:]]
    {"bulk": bulk, "concurrent": concurrent, "halfclose": halfclose, "rst": rst,
     "refused": refused, "udp": udp, "hold": hold, "keeper": keeper,
     "unreach": unreach}[cmd](host, port, *rest)
