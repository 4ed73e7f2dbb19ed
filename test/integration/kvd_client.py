"""t_kvd.sh's client: kvd (app/kvd.c) against pymemcache (Debian's
python3-pymemcache) and raw sockets. Prints "ok - NAME" / "not ok - NAME";
exits 1 when any failed. Usage: kvd_client.py HOST PORT"""
import socket
import struct
import sys
import time

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheServerError, MemcacheClientError

host, port = sys.argv[1], int(sys.argv[2])
failed = 0


def check(name, cond):
    global failed
    print(("ok - " if cond else "not ok - ") + name, flush=True)
    failed += 0 if cond else 1


def raw(data, until=None, timeout=5, chunks=None):
    """Send data (or the chunks, one write each), read until `until` ends
    the answer or the server closes; the answer."""
    s = socket.create_connection((host, port), timeout=timeout)
    for c in (chunks or [data]):
        s.sendall(c)
        time.sleep(0.05 if chunks else 0)
    got = b""
    try:
        while until is None or not got.endswith(until):
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    return got


c = Client((host, port), connect_timeout=5, timeout=5)
c.set("alpha", b"one")
check("set then get", c.get("alpha") == b"one")
check("get of a missing key", c.get("nope") is None)
check("add of an existing key is not stored", c.add("alpha", b"x", noreply=False) is False)
check("replace of a missing key is not stored", c.replace("nope", b"x", noreply=False) is False)
check("replace of an existing key", c.replace("alpha", b"two", noreply=False) and c.get("alpha") == b"two")
c.set("beta", b"b" * 100, noreply=True)
many = c.get_many(["alpha", "beta", "nope"])
check("get of several keys (noreply set before)", many == {"alpha": b"two", "beta": b"b" * 100})
check("flags come back", (c.set("gamma", b"g", flags=7), c.get("gamma"))[1] == b"g"
      and raw(b"get gamma\r\n", b"END\r\n").startswith(b"VALUE gamma 7 1\r\n"))
check("delete, then it is gone", c.delete("alpha", noreply=False) and c.get("alpha") is None)
check("delete of a missing key: NOT_FOUND", raw(b"delete alpha\r\n", b"\r\n") == b"NOT_FOUND\r\n")
big = bytes(range(256)) * 2048  # 512 KiB: more than the send buffer
c.set("big", big)
check("a 512 KiB value comes back whole", c.get("big") == big)
huge = b"h" * (1024 * 1024 + 1)
try:
    c.set("huge", huge, noreply=False)
    check("a value over 1 MiB is refused (SERVER_ERROR)", False)
except MemcacheServerError as e:
    check("a value over 1 MiB is refused (SERVER_ERROR %s)" % e, "too large" in str(e))
check("... and its bytes skipped: the connection goes on", c.get("beta") == b"b" * 100)
check("expiry: a 1 s item is gone after 2 s",
      (c.set("short", b"s", expire=1), time.sleep(2.1), c.get("short"))[2] is None)
check("gets carries a cas unique", raw(b"gets beta\r\n", b"END\r\n").split(b"\r\n")[0].count(b" ") == 4)
check("version", raw(b"version\r\n", b"\r\n").startswith(b"VERSION kvd-"))

# Pipelining: 200 requests in one write, answered in order.
reqs = b"".join(b"set p%d 0 0 %d\r\n%d\r\n" % (i, len(b"%d" % i), i) for i in range(100))
reqs += b"".join(b"get p%d\r\n" % i for i in range(100))
want = b"STORED\r\n" * 100 + b"".join(b"VALUE p%d 0 %d\r\n%d\r\nEND\r\n" % (i, len(b"%d" % i), i)
                                      for i in range(100))
check("200 pipelined requests answered in order", raw(reqs, want[-12:]) == want)
# A request split over segments, at awkward places.
got = raw(None, b"END\r\n", chunks=[b"se", b"t split 0 0 5\r", b"\nhel", b"lo\r", b"\nget split\r\n"])
check("a request split over segments", got == b"STORED\r\nVALUE split 0 5\r\nhello\r\nEND\r\n")
# A slow reader: 300 gets of the 512 KiB value written at once, read 1 s
# later; kvd stops reading while answers wait, and all come back.
s = socket.create_connection((host, port), timeout=20)
s.sendall(b"get big\r\n" * 300)
time.sleep(1)
want_one = b"VALUE big 0 %d\r\n" % len(big) + big + b"\r\nEND\r\n"
got, need = b"", len(want_one) * 300
while len(got) < need:
    b = s.recv(1 << 20)
    if not b:
        break
    got += b
s.close()
check("300 pipelined gets of 512 KiB to a reader that waits: all, in order (%d MiB)" % (len(got) >> 20),
      got == want_one * 300)

# Bad input: memcached's answers.
check("unknown command: ERROR", raw(b"frobnicate\r\n", b"\r\n") == b"ERROR\r\n")
check("bad number: CLIENT_ERROR", raw(b"set k x 0 5\r\nhello\r\n", b"\r\n").startswith(b"CLIENT_ERROR"))
check("value not followed by CRLF: CLIENT_ERROR bad data chunk",
      raw(b"set k 0 0 2\r\nhello\r\n", b"\r\n").startswith(b"CLIENT_ERROR bad data chunk"))
check("key over 250 bytes: CLIENT_ERROR",
      raw(b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n", b"\r\n").startswith(b"CLIENT_ERROR"))
check("a line over 2 KiB: CLIENT_ERROR and the connection closed",
      raw(b"get " + b"k" * 3000, None).startswith(b"CLIENT_ERROR line too long"))
check("too many keys: CLIENT_ERROR",
      raw(b"get" + b"".join(b" k%d" % i for i in range(200)) + b"\r\n", b"\r\n").startswith(b"CLIENT_ERROR"))
check("quit closes the connection", raw(b"quit\r\n", None) == b"")
check("binary garbage: ERROR, and kvd serves on", raw(bytes(range(14, 256)) + b"\r\n", b"\r\n") == b"ERROR\r\n"
      and c.get("beta") == b"b" * 100)

# UDP: memcached's frame header; a 5000-byte answer in 4 datagrams.
c.set("udpval", b"u" * 5000)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(struct.pack(">HHHH", 0x1234, 0, 1, 0) + b"get udpval\r\n", (host, port))
parts = {}
total = None
try:
    while total is None or len(parts) < total:
        d, _ = u.recvfrom(2000)
        rid, seq, total, _ = struct.unpack(">HHHH", d[:8])
        if rid == 0x1234:
            parts[seq] = d[8:]
except socket.timeout:
    pass
body = b"".join(parts[i] for i in sorted(parts))
check("UDP: a 5000-byte value in %s datagrams, reassembled" % total,
      body == b"VALUE udpval 0 5000\r\n" + b"u" * 5000 + b"\r\nEND\r\n" and total == 4)
u.sendto(struct.pack(">HHHH", 7, 0, 1, 0) + b"set udpset 0 0 2\r\nok\r\n", (host, port))
d, _ = u.recvfrom(2000)
check("UDP: set answered STORED with the request id", d == struct.pack(">HHHH", 7, 0, 1, 0) + b"STORED\r\n"
      and c.get("udpset") == b"ok")
sys.exit(1 if failed else 0)
