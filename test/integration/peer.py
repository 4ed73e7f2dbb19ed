#!/usr/bin/python3
"""Linux-side peer for integration tests: drives real sockets against a dpnet
echo server and exits non-zero (with a reason) when anything is wrong."""
import hashlib, os, resource, select, selectors, socket, struct, sys, threading, time


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


def keeper(host, port, seconds, stall_s=10):
    """One connection echoing a fresh message every 20 ms for `seconds`:
    proves it keeps working while other things happen to the host. A round
    trip may stall (a loss recovered by retransmission on a loaded machine)
    up to stall_s; the slowest is printed."""
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(stall_s)
    print("# keeper connected", flush=True)
    n, end, worst = 0, time.time() + seconds, 0.0
    while time.time() < end:
        msg = os.urandom(32)
        t = time.time()
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
        worst = max(worst, time.time() - t)
        n += 1
        time.sleep(0.02)
    s.close()
    print(f"# keeper: {n} round trips, all echoed, slowest {worst * 1000:.0f} ms")


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


# ---- exhaustion (t_exhaust.sh) ----

def _nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n:
        fail(f"cannot raise RLIMIT_NOFILE to {n}")


def _echo_all(socks, tag, window=64, deadline_s=60):
    """One message on every socket, at most `window` in flight; the echo must
    come back whole. Returns the failures as (index, reason)."""
    sel = selectors.DefaultSelector()
    todo, inflight, bad = list(range(len(socks)))[::-1], {}, []
    deadline = time.time() + deadline_s
    while (todo or inflight) and time.time() < deadline:
        while todo and len(inflight) < window:
            i = todo.pop()
            msg = struct.pack("!II", i, tag) + b"e" * (i % 64)
            try:
                socks[i].send(msg)
            except OSError as e:
                bad.append((i, str(e)))
                continue
            inflight[i] = [msg, b""]
            sel.register(socks[i], selectors.EVENT_READ, i)
        for key, _ in sel.select(timeout=0.5):
            i = key.data
            try:
                chunk = key.fileobj.recv(4096)
            except OSError as e:
                chunk, err = None, str(e)
            if not chunk:
                bad.append((i, "closed" if chunk == b"" else err))
                sel.unregister(key.fileobj)
                del inflight[i]
                continue
            inflight[i][1] += chunk
            if len(inflight[i][1]) >= len(inflight[i][0]):
                if inflight[i][1] != inflight[i][0]:
                    bad.append((i, "echo differs"))
                sel.unregister(key.fileobj)
                del inflight[i]
    bad += [(i, "no echo in time") for i in list(inflight) + todo]
    sel.close()
    return bad


def exhaust(host, port, n, extra, wait=4):
    """Open n connections (at most 64 connecting at once), each echoes once;
    then `extra` more attempts must fail (timeout or RST) within `wait` s;
    the n still echo; close them all; a new connection must echo again."""
    _nofile(n + extra + 256)
    socks, t0 = [], time.time()
    sel = selectors.DefaultSelector()
    connecting, deadline = 0, time.time() + 90
    while (len(socks) < n or connecting) and time.time() < deadline:
        while len(socks) < n and connecting < 64:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, len(socks) - 1)
            connecting += 1
        for key, _ in sel.select(timeout=0.5):
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(f"connection {key.data} of {n} failed: {os.strerror(err)} "
                     f"(the stack took fewer than {n})")
            sel.unregister(key.fileobj)
            connecting -= 1
    sel.close()
    if len(socks) < n or connecting:
        fail(f"only {len(socks) - connecting} of {n} connections established in 90 s")
    t1 = time.time()
    bad = _echo_all(socks, 0)
    if bad:
        fail(f"{len(bad)} of {n} established connections did not echo (first {bad[0]})")
    t2 = time.time()
    print(f"# exhaust: {n} connections established in {t1 - t0:.1f} s, each echoed once "
          f"({t2 - t1:.1f} s)", flush=True)

    # More than the pool allows: every attempt must fail, none may hang.
    more = []
    for _ in range(extra):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        more.append(s)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(more):
        sel.register(s, selectors.EVENT_WRITE, i)
    outcome = {}
    end = time.time() + wait
    while len(outcome) < extra and time.time() < end:
        for key, _ in sel.select(timeout=0.2):
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            outcome[key.data] = os.strerror(err) if err else "established"
            sel.unregister(key.fileobj)
    sel.close()
    for i in range(extra):
        outcome.setdefault(i, "connect timeout")
    # An accepted handshake may still be reset by the application layer.
    for i, s in enumerate(more):
        if outcome[i] == "established":
            s.setblocking(True)
            s.settimeout(2)
            try:
                s.sendall(b"extra")
                got = s.recv(100)
                outcome[i] = "echoed" if got == b"extra" else "closed after handshake"
            except ConnectionResetError:
                outcome[i] = "reset after handshake"
            except OSError as e:
                outcome[i] = f"failed after handshake: {e}"
        s.close()
    t3 = time.time()
    kinds = {}
    for o in outcome.values():
        kinds[o] = kinds.get(o, 0) + 1
    print(f"# exhaust: {extra} attempts beyond {n} in {t3 - t2:.1f} s: " +
          ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())), flush=True)
    if kinds.get("echoed") or kinds.get("established"):
        fail(f"{kinds.get('echoed', 0)} connections beyond {n} were served: the limit is not {n}")

    bad = _echo_all(socks, 1)
    if bad:
        fail(f"after the refused attempts {len(bad)} of {n} connections did not echo "
             f"(first {bad[0]})")
    t4 = time.time()
    print(f"# exhaust: all {n} still echo ({t4 - t3:.1f} s)", flush=True)

    for s in socks:
        s.close()
    t5 = time.time()
    end, tries = t5 + 20, 0
    while True:
        tries += 1
        try:
            s = socket.create_connection((host, port), timeout=1)
            s.settimeout(2)
            s.sendall(b"recovered")
            if s.recv(100) == b"recovered":
                s.close()
                break
            s.close()
        except OSError:
            pass
        if time.time() > end:
            fail(f"no new connection echoed within 20 s of closing the {n}")
        time.sleep(0.2)
    print(f"# exhaust: closed all {n}; a new connection echoed {time.time() - t5:.1f} s later "
          f"(attempt {tries})")


def _xfer(host, port, nbytes, timeout, res, key):
    """One echo transfer for load(): res[key] = 'ok' | 'failed: ...' | 'corrupt: ...'."""
    data = os.urandom(nbytes)
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        res[key] = f"failed: connect {e}"
        return
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
    try:
        while True:
            chunk = s.recv(1 << 18)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        err.append(e)
    t.join()
    s.close()
    if len(got) == nbytes and hashlib.sha256(got).digest() == hashlib.sha256(data).digest():
        res[key] = "ok"
    elif err or len(got) < nbytes:
        # An incomplete echo must at least be a prefix of what was sent.
        if bytes(got) != data[:len(got)]:
            res[key] = f"corrupt: the {len(got)} B received differ from what was sent"
        else:
            res[key] = f"failed: {err[0] if err else 'early EOF'} after {len(got)} B"
    else:
        res[key] = f"corrupt: sent {nbytes} B, got {len(got)} B"


def load(host, port, conns, nbytes, nbulk, timeout=30):
    """nbulk bulk echo transfers of nbytes plus `conns` connections echoing
    20 messages of 1..4000 B each, all at once. Transfers may fail (the stack
    may drop under memory pressure) but whatever completes must be intact,
    and everything ends within its timeout (no hang)."""
    _nofile(conns + nbulk + 256)
    res, threads = {}, []
    t0 = time.time()
    for b in range(nbulk):
        threads.append(threading.Thread(target=_xfer, args=(host, port, nbytes, timeout, res,
                                                            f"bulk{b}")))

    def small(i):
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            s.settimeout(timeout)
            for r in range(20):
                msg = os.urandom(1 + (i * 37 + r * 101) % 4000)
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    c = s.recv(len(msg) - len(got))
                    if not c:
                        raise OSError("closed by the server")
                    got += c
                if got != msg:
                    res[f"small{i}"] = f"corrupt: round {r} echo differs"
                    return
            s.close()
            res[f"small{i}"] = "ok"
        except OSError as e:
            res[f"small{i}"] = f"failed: {e}"

    for i in range(conns):
        threads.append(threading.Thread(target=small, args=(i,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 60 - (time.time() - t0) if timeout + 60 > time.time() - t0 else 0.1)
    hung = [t for t in threads if t.is_alive()]
    if hung:
        fail(f"{len(hung)} transfers still running after {timeout + 60} s (hang)")
    dt = time.time() - t0
    okb = sum(1 for k, v in res.items() if k.startswith("bulk") and v == "ok")
    oks = sum(1 for k, v in res.items() if k.startswith("small") and v == "ok")
    print(f"# load: {okb}/{nbulk} bulk transfers of {nbytes} B and {oks}/{conns} small "
          f"connections completed intact in {dt:.1f} s")
    failed = {k: v for k, v in res.items() if v.startswith("failed")}
    for k, v in list(failed.items())[:5]:
        print(f"# load: {k} {v}")
    corrupt = {k: v for k, v in res.items() if v.startswith("corrupt")}
    if corrupt:
        k = next(iter(corrupt))
        fail(f"{len(corrupt)} transfers corrupted, e.g. {k}: {corrupt[k]}")


def _tcp_info(s):
    """(state, probes, backoff) of a socket from TCP_INFO."""
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return b[0], b[3], b[4]


def _ping(host, port, n=5, timeout=3):
    """n fresh connections each echo once; returns the worst round trip, s."""
    worst = 0.0
    for i in range(n):
        t = time.time()
        s = socket.create_connection((host, port), timeout=timeout)
        s.settimeout(timeout)
        msg = b"probe %d" % i
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            c = s.recv(100)
            if not c:
                break
            got += c
        s.close()
        if got != msg:
            fail(f"another connection got {got!r} instead of its echo")
        worst = max(worst, time.time() - t)
    return worst


def _stall_send(s, data, stall_s, limit_s):
    """Send from a non-blocking socket until no byte goes out for stall_s
    (or limit_s in all); returns (bytes pushed, stalled?, TCP_INFO samples)."""
    s.setblocking(False)
    sent, last, t0 = 0, time.time(), time.time()
    samples = []
    while sent < len(data) and time.time() - last < stall_s and time.time() - t0 < limit_s:
        try:
            n = s.send(data[sent:sent + (1 << 20)])
            if n > 0:
                sent += n
                last = time.time()
                continue
        except BlockingIOError:
            pass
        samples.append(_tcp_info(s))
        select_w(s, 0.05)
    return sent, sent < len(data) and time.time() - last >= stall_s, samples


def select_w(s, t):
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_WRITE)
    sel.select(timeout=t)
    sel.close()


def _finish_echo(s, data, sent, timeout):
    """Send the rest while reading everything back; returns the echo."""
    s.setblocking(True)
    s.settimeout(timeout)
    err = []

    def writer():
        try:
            s.sendall(data[sent:])
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer)
    t.start()
    got = bytearray()
    try:
        while True:
            c = s.recv(1 << 18)
            if not c:
                break
            got += c
    except OSError as e:
        err.append(e)
    t.join()
    s.close()
    if err:
        fail(f"after the stall: {err[0]} ({len(got)} of {len(data)} B echoed)")
    if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        fail(f"echo differs: sent {len(data)} B, got {len(got)} B")
    return got


def noread(host, port, nbytes, pause):
    """Send nbytes to the echo port without reading the echo for `pause` s:
    the sender must stall (both sides' buffers full) well before nbytes, the
    server must serve other connections meanwhile, then everything is read
    back intact."""
    data = os.urandom(nbytes)
    s = socket.create_connection((host, port), timeout=10)
    t0 = time.time()
    sent, stalled, samples = _stall_send(s, data, 2.0, pause)
    t1 = time.time()
    if not stalled:
        fail(f"the sender never stalled: pushed {sent} of {nbytes} B in {t1 - t0:.1f} s "
             "without reading")
    state, _, _ = _tcp_info(s)
    if state != 1:
        fail(f"connection not established while stalled (tcp state {state})")
    worst = _ping(host, port)
    print(f"# noread: sender stalled after {sent} of {nbytes} B ({t1 - t0:.1f} s); "
          f"meanwhile 5 other connections echoed (worst {worst * 1000:.0f} ms)", flush=True)
    rest = pause - (time.time() - t0)
    if rest > 0:
        time.sleep(rest)
    t2 = time.time()
    _finish_echo(s, data, sent, 60)
    print(f"# noread: then read all {nbytes} B back intact in {time.time() - t2:.1f} s")


def holdcheck(host, port, nbytes, hold_ms, rcvbuf):
    """Against echoserver --hold-ms: the sender stalls at about the server's
    rcvbuf plus its own send buffer (zero window), the connection stays up
    (window probes answered, no reset) and, once the hold ends, everything
    comes back intact."""
    data = os.urandom(nbytes)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 << 10)
    s.settimeout(10)
    s.connect((host, port))
    sndbuf = s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    t0 = time.time()
    sent, stalled, samples = _stall_send(s, data, 1.5, hold_ms / 1000 - 0.3)
    t1 = time.time()
    if not stalled:
        fail(f"the sender did not stall while the server held: pushed {sent} of {nbytes} B "
             f"in {t1 - t0:.1f} s")
    limit = rcvbuf + sndbuf + (128 << 10)
    if sent > limit:
        fail(f"pushed {sent} B while the server held: more than rcvbuf {rcvbuf} + "
             f"sndbuf {sndbuf} (+128 KiB)")
    if sent < rcvbuf // 2:
        fail(f"pushed only {sent} B: the server did not even take half its rcvbuf")
    # Keep watching until just before the hold ends: still up, probing.
    while time.time() - t0 < hold_ms / 1000 - 0.3:
        samples.append(_tcp_info(s))
        time.sleep(0.05)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    state = _tcp_info(s)[0]
    if err or state != 1:
        fail(f"connection broke while held: {os.strerror(err) if err else 'state %d' % state}")
    probes = max(p for _, p, _ in samples)
    backoff = max(b for _, _, b in samples)
    if max(probes, backoff) == 0:
        fail("no zero-window probe seen (tcpi_probes and tcpi_backoff stayed 0)")
    s.setblocking(True)
    s.settimeout(0.01)
    try:
        early = s.recv(1)
    except (socket.timeout, BlockingIOError):
        early = b""
    if early:
        fail("data was echoed while the server was holding it")
    print(f"# hold: sender stalled after {sent} B in {t1 - t0:.1f} s (rcvbuf {rcvbuf}, own "
          f"sndbuf {sndbuf}); connection up for the {hold_ms} ms hold, zero-window probes "
          f"(max tcpi_backoff {backoff}, tcpi_probes {probes}), nothing echoed early",
          flush=True)
    t2 = time.time()
    _finish_echo(s, data, sent, 60)
    print(f"# hold: after the hold all {nbytes} B came back intact in {time.time() - t2:.1f} s")


def stuff(host, port, k, nbytes, seconds):
    """Open k connections and push up to nbytes on each without ever reading:
    the server's echoes back up in its send buffers (it holds their mbufs).
    Print "stuffed", keep them open for `seconds`, then close."""
    socks = [socket.create_connection((host, port), timeout=5) for _ in range(k)]
    blob = b"s" * 65536
    for s in socks:
        s.setblocking(False)
        sent = 0
        t_end = time.time() + 2
        while sent < nbytes and time.time() < t_end:
            try:
                sent += s.send(blob[: nbytes - sent])
            except BlockingIOError:
                time.sleep(0.01)
    print("stuffed", flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()


def sticky(host, port, n, deadline_s=8):
    """Open n connections and echo once on each, then for every line "echo"
    on stdin echo once more on every connection still open and report how
    many answered ("echoed K failed F"); "quit" ends. Between rounds the test
    changes the server's workers: a connection that moved to another worker
    fails (RST), one that stayed echoes."""
    _nofile(n + 64)
    socks = []
    for i in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=5))
        except OSError as e:
            fail(f"connection {i} of {n}: {e}")
    rnd = 0
    for line in sys.stdin:
        if line.strip() != "echo":
            break
        live = [i for i in range(n) if socks[i] is not None]
        bad = dict(_echo_all([socks[i] for i in live], rnd, deadline_s=deadline_s))
        for j, i in enumerate(live):
            if j in bad:
                socks[i].close()
                socks[i] = None
        print(f"echoed {len(live) - len(bad)} failed {len(bad)}", flush=True)
        rnd += 1
    for s in socks:
        if s is not None:
            s.close()


def udpwait(host, port, n, timeout_s=15):
    """One datagram from each of n sockets (n flows), then wait for every
    echo: datagrams the test parks on a worker's queue or ring (the worker
    stopped) must come back once the worker is killed and its frames are
    steered again. Prints "sent" when all are out and, a second later,
    "pending K": how many have no echo yet."""
    _nofile(n + 64)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for i, u in enumerate(socks):
        u.setblocking(False)
        u.sendto(b"parked %d" % i, (host, port))
    print("sent", flush=True)
    left = set(range(n))
    start = time.monotonic()
    end, told = start + timeout_s, False
    while left and time.monotonic() < end:
        if not told and time.monotonic() > start + 1:
            print(f"pending {len(left)}", flush=True)
            told = True
        r, _, _ = select.select([socks[i] for i in left], [], [], 0.2)
        for u in r:
            i = socks.index(u)
            d, _ = u.recvfrom(2048)
            if d != b"parked %d" % i:
                fail(f"datagram {i}: echo differs")
            left.discard(i)
    print(f"echoed {n - len(left)} of {n}", flush=True)
    if left:
        sys.exit(1)


def _tun_fds_async(pid, fds=None):
    """Clear O_ASYNC on every /dev/net/tun fd of process pid that has it
    (fds None; returns those fds), or set it again on fds, through copies
    of them (pidfd_getfd): the flag belongs to the open file, which the copy
    shares. Setting it makes the caller the signal's owner (tun's fasync),
    so the owner goes back to pid."""
    import ctypes, fcntl
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd, done = os.pidfd_open(pid), []
    try:
        names = os.listdir(f"/proc/{pid}/fd") if fds is None else fds
        for name in names:
            try:
                if os.readlink(f"/proc/{pid}/fd/{name}") != "/dev/net/tun":
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # SYS_pidfd_getfd
            if fd < 0:
                fail(f"pidfd_getfd of fd {name}: errno {ctypes.get_errno()}")
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            if fds is None and fl & os.O_ASYNC:
                fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~os.O_ASYNC)
                done.append(name)
            elif fds is not None:
                fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_ASYNC)
                fcntl.fcntl(fd, fcntl.F_SETOWN, pid)
            os.close(fd)
    finally:
        os.close(pidfd)
    return done


def nosignal(host, port, pid):
    """net_tap reads a queue only after its RX signal: with the signal gone
    (O_ASYNC cleared on the server's tun fds, as a lost signal leaves it), a
    TCP connection and a UDP socket must still be answered."""
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"before")
    if s.recv(64) != b"before":
        fail("echo before the signal was cleared differs")
    cleared = _tun_fds_async(pid)
    if not cleared:
        fail(f"no /dev/net/tun fd with O_ASYNC in process {pid}")
    try:
        time.sleep(0.5)  # the worker has gone to sleep by now
        s.settimeout(5)
        s.sendall(b"without the signal")
        got = b""
        while len(got) < 18:
            d = s.recv(64)
            if not d:
                fail("connection closed")
            got += d
        if got != b"without the signal":
            fail("TCP echo without the signal differs")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        time.sleep(0.5)
        u.sendto(b"udp without the signal", (host, port))
        if u.recvfrom(64)[0] != b"udp without the signal":
            fail("UDP echo without the signal differs")
    finally:
        _tun_fds_async(pid, cleared)
    s.close()
    print(f"# echoed over TCP and UDP with O_ASYNC cleared on {len(cleared)} tun fds")


if __name__ == "__main__":
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rest = [int(x) for x in sys.argv[4:]]
    cmds = {"bulk": bulk, "concurrent": concurrent, "halfclose": halfclose, "rst": rst,
     "refused": refused, "udp": udp, "hold": hold, "keeper": keeper,
     "unreach": unreach, "exhaust": exhaust, "load": load, "noread": noread,
     "holdcheck": holdcheck, "sticky": sticky, "stuff": stuff, "udpwait": udpwait,
     "nosignal": nosignal}
    try:
        cmds[cmd](host, port, *rest)
    except OSError as e:  # a timeout, a refusal or a reset: said where checks are read
        fail(f"{cmd}: {e!r}")
