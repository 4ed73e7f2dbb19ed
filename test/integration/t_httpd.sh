#!/usr/bin/env bash
# httpd (app/httpd.c) on net_tap inside a namespace; the namespace's Linux
# stack is the client (curl, wrk, ab, raw sockets from python): /hello and
# files with their headers, HEAD, keep-alive, pipelining, a request split
# over segments, a 10 MiB file by hash, path traversal, 400/404/405/413/431/
# 505, load without errors, the file cache (no system call per request, a
# change on disk seen within --cache-valid-ms), and a clean SIGINT shutdown
# with counters.
source "$(dirname "$0")/lib.sh"

NS=dpn-http-$TAG IFC=dh$TAG
SIP=10.74.0.2 PIP=10.74.0.1
URL=http://$SIP:80
LOG=/tmp/dpn-httpd-$TAG.log
ROOT=/tmp/dpn-httpd-root-$TAG
WORK=/tmp/dpn-httpd-work-$TAG
CLIENT=$WORK/client.py
track_file "$LOG"; track_file "$ROOT"; track_file "$WORK"
mkdir -p "$ROOT/sub" "$WORK"
head -c $((10 << 20)) /dev/urandom >"$ROOT/big.bin"
printf '<h1>dpnet</h1>\n' >"$ROOT/index.html"
printf 'small file\n' >"$ROOT/sub/small.txt"
ln -s /etc/passwd "$ROOT/escape"

new_ns "$NS"
nsx() { ip netns exec "$NS" "$@"; }

# Like lib.sh's start_tap_server, for httpd.
ip netns exec "$NS" "$B/app/httpd" --no-pci -l 1 --log-level=pmd.net.tap:error \
  --vdev="net_tap0,iface=$IFC" -- --ip $SIP/24 --poll hybrid --port 80 --root "$ROOT" \
  --cache-valid-ms 500 >"$LOG" 2>&1 &
SERVER_PID=$!; track_pid "$SERVER_PID"
wait_log "$LOG" "listening on port" 15
nsx ip addr add $PIP/24 dev "$IFC"
nsx ip link set "$IFC" up
for _ in $(seq 50); do nsx ping -c 1 -W 1 $SIP >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$CLIENT" <<'PYEOF'
# Raw-socket HTTP client: checks what curl cannot (pipelining, framing,
# split requests, malformed requests, how the server ends the connection).
import socket, sys, time

def conn(ip):
    s = socket.create_connection((ip, 80), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

class Reader:
    def __init__(self, s): self.s, self.buf = s, bytearray()
    def fill(self):
        d = self.s.recv(1 << 20)
        if not d: raise EOFError("connection closed")
        self.buf += d
    def response(self, head=False):
        while self.buf.find(b"\r\n\r\n") < 0: self.fill()
        i = self.buf.find(b"\r\n\r\n")
        hdr, self.buf = bytes(self.buf[:i]), self.buf[i + 4:]
        lines = hdr.decode().split("\r\n")
        status = int(lines[0].split()[1])
        h = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = 0 if head else int(h["content-length"])
        while len(self.buf) < n: self.fill()
        body, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return status, h, body
    def closed(self):  # True if the server closed cleanly with nothing more
        while True:
            d = self.s.recv(65536)
            if not d: return self.buf == b""
            self.buf += d

def req(method, path, extra="", ver="HTTP/1.1"):
    return f"{method} {path} {ver}\r\nHost: t\r\n{extra}\r\n".encode()

def expect(cond, what):
    if not cond: sys.exit("FAIL: " + what)

def pipeline(ip):  # three requests in one send, answered in order
    s = conn(ip); r = Reader(s)
    s.sendall(req("GET", "/hello") + req("HEAD", "/sub/small.txt") +
              req("GET", "/sub/small.txt", "Connection: close\r\n"))
    st, h, b = r.response(); expect((st, b) == (200, b"Hello, world!\n"), f"1st: {st} {b!r}")
    st, h, b = r.response(head=True)
    expect(st == 200 and h["content-length"] == "11", f"2nd (HEAD): {st} {h}")
    st, h, b = r.response(); expect((st, b) == (200, b"small file\n"), f"3rd: {st} {b!r}")
    expect(h["connection"] == "close", "3rd not Connection: close")
    expect(r.closed(), f"bytes after the 3rd response (a HEAD body?): {r.buf[:60]!r}")

def pipebig(ip, path):  # 300 requests queued behind a 10 MiB response
    s = conn(ip); r = Reader(s)
    s.sendall(req("GET", "/big.bin") + req("GET", "/hello") * 300 +
              req("GET", "/sub/small.txt", "Connection: close\r\n"))
    st, h, b = r.response()
    expect(st == 200 and b == open(path, "rb").read(), f"big: {st}, {len(b)} B, differs")
    for i in range(300):
        st, h, b = r.response()
        expect((st, b) == (200, b"Hello, world!\n"), f"hello #{i}: {st} {b!r}")
    st, h, b = r.response(); expect((st, b) == (200, b"small file\n"), f"last: {st} {b!r}")
    expect(r.closed(), "not closed after Connection: close")

def split(ip):  # one request in five segments; a small body is discarded
    s = conn(ip); r = Reader(s)
    for part in (b"GE", b"T /hel", b"lo HTTP/1.1\r\nHo", b"st: t\r\n", b"\r\n"):
        s.sendall(part); time.sleep(0.05)
    st, h, b = r.response(); expect((st, b) == (200, b"Hello, world!\n"), f"split: {st} {b!r}")
    s.sendall(req("POST", "/hello", "Content-Length: 10\r\n") + b"0123456789")
    st, h, b = r.response(); expect(st == 405 and h.get("allow") == "GET, HEAD", f"POST: {st} {h}")
    s.sendall(req("GET", "/hello", "Connection: close\r\n"))
    st, h, b = r.response(); expect((st, b) == (200, b"Hello, world!\n"), f"after body: {st} {b!r}")
    expect(r.closed(), "not closed after Connection: close")

def http10(ip):  # 1.0 closes by default, keeps alive when asked
    s = conn(ip); r = Reader(s)
    s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
    st, h, b = r.response()
    expect(st == 200 and h["connection"] == "close" and r.closed(), f"1.0: {st} {h}")
    s = conn(ip); r = Reader(s)
    for i in range(2):
        s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        st, h, b = r.response()
        expect(st == 200 and h["connection"] == "keep-alive", f"1.0 keep-alive #{i}: {st} {h}")

BAD = {
    "malformed": (b"GARBAGE\r\n\r\n", 400),
    "no-host": (b"GET /hello HTTP/1.1\r\n\r\n", 400),
    "bad-header": (b"GET /hello HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400),
    "version": (b"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    "bigheader": (req("GET", "/hello", "X-Big: " + "a" * 16384 + "\r\n"), 431),
    "bigbody": (req("POST", "/up", "Content-Length: 2097152\r\n"), 413),
}

def status(ip, kind):  # an error answer, then a clean close (FIN, not RST)
    data, want = BAD[kind]
    s = conn(ip); r = Reader(s)
    s.sendall(data)
    if kind == "bigbody":  # the client sends its body anyway: drained, no RST
        s.sendall(b"x" * 2097152); s.shutdown(socket.SHUT_WR)
    st, h, b = r.response()
    expect(st == want, f"{kind}: got {st}, want {want}")
    expect(h["connection"] == "close" and r.closed(), f"{kind}: not closed cleanly")

def get(ip, path):  # print the status of one GET (raw path: no normalisation)
    s = conn(ip); r = Reader(s)
    s.sendall(req("GET", path, "Connection: close\r\n"))
    print(r.response()[0])

cmd, ip = sys.argv[1], sys.argv[2]
{"pipeline": pipeline, "split": split, "http10": http10}.get(cmd, lambda ip: None)(ip)
if cmd == "status": status(ip, sys.argv[3])
if cmd == "get": get(ip, sys.argv[3])
if cmd == "pipebig": pipebig(ip, sys.argv[3])
PYEOF
py() { ip netns exec "$NS" timeout 60 $PY "$CLIENT" "$@"; }
CURL=(ip netns exec "$NS" curl -s --max-time 20)

# /hello: status, body, headers.
check "GET /hello: 200 and body" \
  bash -c "[ \"\$(${CURL[*]} -w '%{http_code}' $URL/hello)\" = \$'Hello, world!\n200' ]"
"${CURL[@]}" -D "$WORK/h1" -o "$WORK/b1" $URL/hello || true
check "/hello headers: Content-Length 14, Content-Type text/plain" \
  bash -c "grep -qi '^Content-Length: 14'\$'\r' $WORK/h1 && grep -qi '^Content-Type: text/plain'\$'\r' $WORK/h1"
"${CURL[@]}" -D "$WORK/h2" -o "$WORK/b2" $URL/ || true
check "/ is index.html: text/html, length 15, content" \
  bash -c "grep -qi '^Content-Length: 15'\$'\r' $WORK/h2 && grep -qi '^Content-Type: text/html'\$'\r' $WORK/h2 && cmp -s $WORK/b2 $ROOT/index.html"
"${CURL[@]}" -I -o "$WORK/h3" $URL/big.bin || true
check "HEAD: 200, Content-Length of the file, application/octet-stream" \
  bash -c "grep -q '^HTTP/1.1 200' $WORK/h3 && grep -qi '^Content-Length: $((10 << 20))'\$'\r' $WORK/h3 && grep -qi '^Content-Type: application/octet-stream' $WORK/h3"
check "pipelining: 3 requests in one send, answered in order; HEAD has no body" py pipeline $SIP
check "pipelining behind a 10 MiB response: 300 more requests, in order" \
  py pipebig $SIP "$ROOT/big.bin"
check "a request split over 5 segments; a small body is discarded (405)" py split $SIP

"${CURL[@]}" -v -o /dev/null -o /dev/null $URL/hello $URL/sub/small.txt >"$WORK/ka" 2>&1 || true
check "keep-alive: curl re-uses the connection for a second URL" \
  grep -q "Re-using existing connection" "$WORK/ka"
check "HTTP/1.0: closes by default, keeps alive when asked" py http10 $SIP

"${CURL[@]}" -o "$WORK/big.out" $URL/big.bin || true
check "10 MiB file intact (sha256)" \
  bash -c "[ \"\$(sha256sum <$ROOT/big.bin)\" = \"\$(sha256sum <$WORK/big.out)\" ]"
code() { "${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "$@"; }
check "404 for a missing file" test "$(code $URL/nope.txt)" = 404
check "404 for a directory" test "$(code $URL/sub)" = 404
check "path traversal /../ refused (403)" test "$(code $URL/../../etc/passwd)" = 403
check "encoded traversal /%2e%2e/ refused (403)" test "$(code $URL/sub/%2e%2e/%2e%2e/etc/passwd)" = 403
check "symlink out of the root refused (403)" test "$(py get $SIP /escape)" = 403
for k in malformed no-host bad-header version bigheader bigbody; do
  check "error answer and clean close: $k" py status $SIP $k
done

nsx timeout 30 wrk -t1 -c8 -d3s $URL/hello >"$WORK/wrk" 2>&1 || true
sed 's/^/# wrk: /' "$WORK/wrk"
wrk_n=$(grep -o '^ *[0-9]* requests in' "$WORK/wrk" | awk '{print $1}')
check "wrk: ${wrk_n:-0} requests, no socket errors, no non-2xx" \
  bash -c "[ ${wrk_n:-0} -gt 0 ] && ! grep -Eq 'Socket errors|Non-2xx' $WORK/wrk"
nsx timeout 60 ab -n 2000 -c 8 -k $URL/hello >"$WORK/ab" 2>&1 || true
grep -E 'Complete requests|Failed requests|Keep-Alive requests|Requests per second|Non-2xx' \
  "$WORK/ab" | sed 's/^/# ab: /'
check "ab -n 2000 -c 8 -k: 2000 complete, 0 failed, all keep-alive" \
  bash -c "grep -Eq '^Complete requests: +2000$' $WORK/ab && grep -Eq '^Failed requests: +0$' $WORK/ab && grep -Eq '^Keep-Alive requests: +2000$' $WORK/ab && ! grep -q Non-2xx $WORK/ab"

# The file cache: a cached file costs no system call per request (strace
# counts the file calls of 200 requests), and a change on disk is served
# within --cache-valid-ms (500 here).
"${CURL[@]}" -o /dev/null $URL/sub/small.txt
ST=$WORK/strace
strace -f -qq -e trace=openat,openat2,pread64,fstat,newfstatat,close -o "$ST" -p "$SERVER_PID" &
STP=$!; track_pid $STP
sleep 1
nsx $PY - "$SIP" <<'PY' >"$WORK/many" 2>&1 || true
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=10)
req = b"GET /sub/small.txt HTTP/1.1\r\nHost: x\r\n\r\n"
ok = 0
for i in range(200):
    s.sendall(req)
    got = b""
    while not got.endswith(b"small file\n"):
        got += s.recv(4096)
    ok += 1
print(ok)
PY
sleep 0.3
kill -INT $STP 2>/dev/null; wait $STP 2>/dev/null || true
calls=$(grep -cE 'openat2|pread64|fstat|close\(' "$ST" || true)
check "200 requests of a cached file: $(cat "$WORK/many") answered, $calls file system calls (at most 2 per 500 ms)" \
  bash -c "[ '$(cat "$WORK/many")' = 200 ] && [ ${calls:-999} -le 20 ]"
last_failed && head -20 "$ST" | sed 's/^/# /'
printf 'changed file\n' >"$ROOT/sub/small.txt"
check "a file changed on disk is served new within the validity (bounded wait)" \
  wait_for 5 bash -c "${CURL[*]} -s $URL/sub/small.txt | grep -q 'changed file'"
rm "$ROOT/sub/small.txt"
check "... and a removed one is 404 again" wait_for 5 bash -c "[ \$(${CURL[*]} --path-as-is -o /dev/null -w '%{http_code}' $URL/sub/small.txt) = 404 ]"

check "clean shutdown on SIGINT (exit status 0)" stop_proc "$SERVER_PID"
grep '^httpd: requests' "$LOG" | sed 's/^/# /'
reqs=$(grep -o '^httpd: requests [0-9]*' "$LOG" | awk '{print $3}')
check "counters printed (${reqs:-none} requests >= 2300)" test "${reqs:-0}" -ge 2300
check "no sanitizer reports in the server's log" \
  bash -c "! grep -Eq 'runtime error|AddressSanitizer|LeakSanitizer' $LOG"
check "file cache counters printed, with hits" grep -qE '^httpd: file cache [1-9][0-9]* hits' "$LOG"
check "counters: 404, 413, 431 and 505 answered" \
  grep -Eq ' 404:[1-9][0-9]* .* 413:1 431:1 .* 505:1;' "$LOG"
finish
