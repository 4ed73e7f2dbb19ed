#!/usr/bin/env bash
# Inside the Debian-kernel guest with two emulated e1000e NICs wired back to
# back (t_pci.sh runs it through tools/guest.sh --pci): the PCI path that
# net_tap and memif never take. One NIC is bound to vfio-pci behind the
# emulated IOMMU and given to DPDK; the other, the Linux peer, goes into a
# namespace of ours. A standalone echoserver on the PCI port, then dpnetd
# on it with a worker started as the README says (tools/dpnet-run, which
# passes the PCI address); a worker started with --no-pci is refused with
# what to pass instead.
source "$(dirname "$0")/lib.sh"
guest_tee "$@"
top=$(cd "$HERE/../.." && pwd)
PCI=${GUEST_PCI_DPDK:?} IFC=${GUEST_PCI_PEER_IF:?}
NS=dpn-pci-$TAG PFX=dpnpci$TAG SPFX=dpnpcs$TAG
SIP=10.85.0.2 PIP=10.85.0.1
track_prefix "$PFX"
track_prefix "$SPFX"
new_ns "$NS"
ip link set "$IFC" netns "$NS"
nsx() { ip netns exec "$NS" "$@"; }
peer() { ip netns exec "$NS" $PY "$HERE/peer.py" "$@"; }
nsx ip addr add $PIP/24 dev "$IFC"
nsx ip link set "$IFC" up
link_up() { nsx ip link show "$IFC" | grep -q "LOWER_UP"; }

# ---- standalone: echoserver owns the PCI port
SLOG=/tmp/dpn-pci-s-$TAG.log; track_file "$SLOG"
"$B/app/echoserver" -a "$PCI" -l 1 --file-prefix "$SPFX" -- --ip $SIP/24 --poll hybrid \
  >"$SLOG" 2>&1 &
SP=$!; track_pid $SP
check "standalone echoserver probes $PCI and listens" wait_log "$SLOG" "listening on port" 90
grep -E "Probe PCI driver|port 0 \(" "$SLOG" | sed 's/^/# /'
check "the peer's link comes up" wait_for 30 link_up
pinged() { nsx ping -c 1 -W 2 -q $SIP >/dev/null 2>&1; }
check "ping over the PCI NIC (ARP + ICMP)" wait_for 30 pinged
check "TCP: 256 KiB echoed intact" peer bulk $SIP 7 262144
check "UDP echoed" peer udp $SIP 7 64
check "the echoserver waited for the NIC's link ($(grep -o 'Link up.*' "$SLOG" | head -1))" \
  grep -q "port 0: Link up" "$SLOG"
check "standalone echoserver stops cleanly on SIGINT" stop_proc $SP
check "its mbufs came back" mbufs_back "$SLOG"

# ---- dpnetd on the PCI port, a worker as the README starts it
DLOG=/tmp/dpn-pci-d-$TAG.log; track_file "$DLOG"
"$B/app/dpnetd" -a "$PCI" -l 0 --file-prefix "$PFX" -- --ip $SIP/24 --queues 2 --poll hybrid \
  >"$DLOG" 2>&1 &
DPID=$!; track_pid $DPID
check "dpnetd serves the PCI port" wait_log "$DLOG" "dpnetd: serving" 90
grep "dpnetd: serving" "$DLOG" | sed 's/^/# /'
ctl() { "$B/app/dpnetctl" --file-prefix "$PFX" "$@"; }
check "dpnetctl device names the PCI address ($(ctl device))" grep -qx "$PCI pci" <<<"$(ctl device)"
check "dpnetd answers ping" wait_for 30 pinged
# dpnetd sleeps with queue 0's RX interrupt armed (hybrid). em's never
# fires under vfio's MSI-X (em programs no IVAR): dpnetd must notice and nap
# poll.sleep_max_us instead of sleeping 100 ms per frame.
woken() { ctl stats | sed -n 's/^dpnetd: [0-9]* sleeps, \([0-9]*\) ended by.*/\1/p'; }
w0=$(woken)
nsx ping -c 30 -i 0.2 -W 2 -q $SIP >/dev/null 2>&1 || true
sleep 0.2 # dpnetd publishes its counters every 100 ms
w1=$(woken)
silent() { grep -q "RX interrupt never fired while frames came" "$DLOG"; }
how="$((w1 - w0)) sleeps of 30 pings ended by the interrupt"
silent && how="$how; the interrupt never fired, and dpnetd said so"
check "dpnetd sleeps on its RX interrupt, or notices it never fires ($how)" \
  bash -c "[ $((w1 - w0)) -ge 15 ] || grep -q 'RX interrupt never fired while frames came' '$DLOG'"
last_failed && { grep "up:" "$DLOG"; ctl stats | head -3; } | sed 's/^/# /'
# A worker that cannot see the port (--no-pci) is refused, and told why.
NLOG=/tmp/dpn-pci-n-$TAG.log; track_file "$NLOG"
rc=0
timeout 60 "$B/app/echoserver" --no-pci --proc-type=secondary --lcores=3@1 --file-prefix "$PFX" \
  -- --app bad --port 9 --poll hybrid >"$NLOG" 2>&1 || rc=$?
grep "not usable" "$NLOG" | sed 's/^/# /'
check "a --no-pci worker is refused (exit $rc) with what to pass instead" \
  bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'start the worker with -a' '$NLOG'"
# Interrupt mode attached: a secondary has no RX interrupt on this port.
ILOG=/tmp/dpn-pci-i-$TAG.log; track_file "$ILOG"
rc=0
timeout 60 "$B/app/echoserver" -a "$PCI" --proc-type=secondary --lcores=4@1 --file-prefix "$PFX" \
  -- --app intr --port 9 --poll interrupt >"$ILOG" 2>&1 || rc=$?
grep "no interrupt" "$ILOG" | sed 's/^/# /'
check "an attached worker with --poll interrupt is refused (exit $rc): nothing to sleep on" \
  bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'no interrupt to sleep on' '$ILOG'"
WLOG=/tmp/dpn-pci-w-$TAG.log; track_file "$WLOG"
DPNET_APP_SECRET= "$top/tools/dpnet-run" --file-prefix "$PFX" --workers 1 --cpus 1 --app web -- \
  "$B/app/echoserver" --port 7 --poll hybrid >"$WLOG" 2>&1 &
WP=$!; track_pid $WP
check "tools/dpnet-run starts a worker on the PCI port" wait_log "$WLOG" "listening on port 7" 90
check "attached: TCP 256 KiB echoed intact" peer bulk $SIP 7 262144
check "attached: UDP echoed" peer udp $SIP 7 64
check "attached: 20 connections x 3 rounds" peer concurrent $SIP 7 20
check "dpnetd still answers ping" pinged
# dpnet-run passes SIGTERM on to its worker and exits with the worker's
# status (started in the background by a script, it ignores SIGINT: bash
# cannot trap a signal ignored at its start).
wstop() {
  kill -TERM $WP 2>/dev/null || return 1
  for _ in $(seq 300); do kill -0 $WP 2>/dev/null || break; sleep 0.1; done
  kill -0 $WP 2>/dev/null && return 1
  wait $WP
}
check "the worker stops cleanly on SIGTERM (through dpnet-run)" wstop
last_failed && tail -15 "$WLOG" | sed 's/^/#   /'
# e1000 keeps sent mbufs in its TX ring (no tx_done_cleanup): dpnetd gives
# the slot a fresh pool (dpnd_q1.1) and frees the old one only once its
# mbufs are back; the port's stop below frees those still in the ring.
tx_whole() { ctl pools | awk '$1 ~ /^dpnd_q1(\.[0-9]+)?$/ { ok = ($3 == $2) } END { exit !ok }'; }
check "dpnetd has the worker's TX pool whole again" wait_for 20 tx_whole
last_failed && ctl pools | sed 's/^/# /'
# An unmodified program through the sockets layer on the PCI port:
# dpnet-run --preload passes -a too (the worker starts at kecho's first
# socket call).
KLOG=/tmp/dpn-pci-k-$TAG.log; track_file "$KLOG"
DPNET_APP_SECRET= DPNET_POSIX_LIB=$B/posix/libdpnet-posix.so \
  "$top/tools/dpnet-run" --preload --file-prefix "$PFX" --cpus 1 -- \
  "$B/app/kecho" -p 7 >"$KLOG" 2>&1 &
KP=$!; track_pid $KP
check "dpnet-run --preload: kecho (plain sockets) attached on the PCI port" \
  wait_log "$KLOG" "kecho: listening" 90
# 64 KiB: through the layer on this emulated NIC a round of the window takes
# long (4-33 s for 256 KiB here, the worker polled only inside kecho's calls).
check "... TCP 64 KiB echoed intact through the layer" peer bulk $SIP 7 65536
last_failed && tail -20 "$KLOG" | sed 's/^/#   /'
kstop() {
  kill -TERM $KP 2>/dev/null || return 1
  for _ in $(seq 300); do kill -0 $KP 2>/dev/null || break; sleep 0.1; done
  kill -0 $KP 2>/dev/null && return 1
  wait $KP && grep -q "^dpnet stats: .*connections [1-9][0-9]* total" "$KLOG"
}
check "... it stops cleanly on SIGTERM, its worker's counters printed" kstop
last_failed && tail -15 "$KLOG" | sed 's/^/#   /'
grep "^dpnet stats:" "$KLOG" | sed 's/^/# /'
check "dpnetd stops cleanly on SIGINT" stop_proc $DPID
if grep -qE "AddressSanitizer|runtime error:" "$SLOG" "$DLOG" "$WLOG" "$KLOG"; then
  grep -hE -A20 "AddressSanitizer|runtime error:" "$SLOG" "$DLOG" "$WLOG" "$KLOG" | head -40 | sed 's/^/#   /'
  not_ok "no sanitizer report"
else
  ok "no sanitizer report"
fi
finish
