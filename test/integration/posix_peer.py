#!/usr/bin/env python3
"""Linux-side peer of posixprobe (t_posix.sh): an echo port that closes on
EOF (and a UDP echo on the same number), a port that answers its first
byte with a reset, and a silent port: once it has accepted, this host drops
everything the client sends (keepalive probes go unanswered), and a late
port: it sends "late" half a second after it accepts, then closes.
    posix_peer.py ECHO_PORT RESET_PORT SILENT_PORT [LATE_PORT]"""
import socket
import struct
import subprocess
import sys
import threading
import time


def echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)


def reset(c):
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def silent(c):
    ip, port = c.getpeername()
    subprocess.run(["iptables", "-w", "-I", "INPUT", "-p", "tcp", "-s", ip, "--sport", str(port),
                    "-j", "DROP"], check=True)
    while c.recv(65536):  # nothing comes: held until the test ends
        pass


def late(c):
    with c:
        time.sleep(0.5)
        c.sendall(b"late")


def serve(port, fn):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()


def udp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(65536)
        s.sendto(d, a)


threading.Thread(target=serve, args=(int(sys.argv[2]), reset), daemon=True).start()
threading.Thread(target=serve, args=(int(sys.argv[3]), silent), daemon=True).start()
if len(sys.argv) > 4:
    threading.Thread(target=serve, args=(int(sys.argv[4]), late), daemon=True).start()
threading.Thread(target=udp_echo, args=(int(sys.argv[1]),), daemon=True).start()
serve(int(sys.argv[1]), echo)
