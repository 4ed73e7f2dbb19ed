#!/usr/bin/env bash
# dpnet as Debian packages (tools/package.sh): built, installed on this
# machine with dpkg, dpnetd started as its systemd unit says (through
# systemctl where systemd runs; here, where it does not, by running the
# unit's ExecStartPre and ExecStart lines), an installed echoserver
# attached to it, dpnet-run and dpnetctl from the package, and everything
# purged again.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$HERE/../.." && pwd)
PKGS=(dpnet-examples dpnet libdpnet-dev libdpnet0)
for p in "${PKGS[@]}"; do
  if dpkg -s "$p" >/dev/null 2>&1; then
    not_ok "package $p is installed already: this test does not touch an installation it did not make"
    finish
    exit 1
  fi
done
NS=dpn-pk-$TAG PFX=dpnpk$TAG
OUT=$(mktemp -d /tmp/dpn-debs.XXXXXX); track_file "$OUT"
track_prefix "$PFX"
installed=0
purge() { [ "$installed" = 0 ] || dpkg -P "${PKGS[@]}" >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT

check "tools/package.sh builds four packages" \
  bash -c "'$SRC/tools/package.sh' --out '$OUT' >'$OUT/list' 2>'$OUT/err' && [ \$(wc -l <'$OUT/list') = 4 ]"
last_failed && sed 's/^/# /' "$OUT/err"
DEB=$(ls "$OUT"/dpnet_*.deb 2>/dev/null || true)
check "dpnet has dpnetd, dpnetctl, dpnet-run, the unit and its config" \
  bash -c "dpkg-deb -c '$DEB' | grep -q usr/bin/dpnetd && dpkg-deb -c '$DEB' | grep -q lib/systemd/system/dpnetd.service && dpkg-deb -c '$DEB' | grep -q etc/dpnet/dpnetd.conf && dpkg-deb -c '$DEB' | grep -q usr/bin/dpnet-run"
check "its Depends name DPDK's libraries (dpkg-shlibdeps): $(dpkg-deb -f "$DEB" Depends | cut -c1-60)..." \
  bash -c "dpkg-deb -f '$DEB' Depends | grep -q librte-eal"
installed=1
check "dpkg installs all four" bash -c "dpkg -i $OUT/*.deb >'$OUT/dpkg.log' 2>&1"
last_failed && tail -5 "$OUT/dpkg.log" | sed 's/^/# /'
check "... dpnet is 'install ok installed'" \
  bash -c "dpkg -s dpnet | grep -q '^Status: install ok installed'"
check "the installed echoserver finds the installed library" \
  bash -c "ldd /usr/bin/echoserver | grep -q 'libdpnet.so.0 => /\(usr/\)\{0,1\}lib/'"

check "dpnetd --help reads like a manual (options, signals, files)" \
  bash -c "/usr/bin/dpnetd --help | grep -q 'daemon.steering' && /usr/bin/dpnetd --help | grep -q '^Signals'"
check "dpnetctl --help names every view" \
  bash -c "h=\$(/usr/bin/dpnetctl --help); for v in workers bindings flows neigh stats pools device conns; do grep -q \"^  \$v \" <<<\"\$h\" || exit 1; done"
check "dpnet-run --help" bash -c "/usr/bin/dpnet-run --help | grep -q 'file-prefix PREFIX'"

# dpnetd as its unit starts it.
UNIT=/lib/systemd/system/dpnetd.service
new_ns "$NS"
unit_line() { sed -n "s/^$1=//p" "$UNIT"; }
export DPNETD_LCORE=0 DPNETD_PREFIX=$PFX DPNET_HUGEPAGES=$(cat /proc/sys/vm/nr_hugepages)
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
  echo "# systemd runs here: the unit is started with systemctl"
else
  echo "# systemd does not run here: running the unit's ExecStartPre and ExecStart lines"
fi
check "the unit's ExecStartPre (hugepages) runs" bash -c "$(unit_line ExecStartPre)"
START=$(unit_line ExecStart)
START=${START//'${DPNETD_LCORE}'/$DPNETD_LCORE}
START=${START//'${DPNETD_PREFIX}'/$DPNETD_PREFIX}
START=${START/ -- / --log-level=pmd.net.tap:error -- } # EAL's: net_tap's notices on this kernel
DLOG=/tmp/dpn-pk-$TAG.log; track_file "$DLOG"
# shellcheck disable=SC2086
ip netns exec "$NS" $START >"$DLOG" 2>&1 &
DPID=$!; track_pid $DPID
check "dpnetd starts from /etc/dpnet/dpnetd.conf ($START)" wait_log "$DLOG" "dpnetd: serving" 20
ip netns exec "$NS" ip addr add 10.77.0.1/24 dev dpn0
ip netns exec "$NS" ip link set dpn0 up
check "it answers ping" ip netns exec "$NS" ping -c 2 -i 0.2 -W 2 -q 10.77.0.2
WLOG=/tmp/dpn-pkw-$TAG.log; track_file "$WLOG"
ip netns exec "$NS" /usr/bin/echoserver --no-pci -l 1 --proc-type=secondary --file-prefix "$PFX" \
  --log-level=pmd.net.tap:error -- --port 7 --poll hybrid >"$WLOG" 2>&1 &
WPID=$!; track_pid $WPID
check "the installed echoserver attaches" wait_log "$WLOG" "listening on port 7" 15
check "... and echoes" ip netns exec "$NS" $PY "$HERE/peer.py" concurrent 10.77.0.2 7 10
RLOG=/tmp/dpn-pkr-$TAG.log; track_file "$RLOG"
ip netns exec "$NS" /usr/bin/dpnet-run --file-prefix "$PFX" --workers 1 --cpus 1 -- \
  /usr/bin/echoserver --port 8 --poll hybrid >"$RLOG" 2>&1 &
RPID=$!; track_pid $RPID
check "the installed dpnet-run starts a worker" wait_log "$RLOG" "listening on port 8" 15
check "... which echoes" ip netns exec "$NS" $PY "$HERE/peer.py" concurrent 10.77.0.2 8 10
check "the installed dpnetctl lists both workers" \
  test "$(/usr/bin/dpnetctl --file-prefix "$PFX" workers | grep -c attached)" = 2
check "dpnet-run stops its worker on SIGTERM" bash -c "kill -TERM $RPID; for i in \$(seq 100); do kill -0 $RPID 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
check "the worker stops cleanly" stop_proc $WPID
check "dpnetd stops cleanly on the unit's KillSignal ($(unit_line KillSignal))" stop_proc $DPID
check "dpkg purges all four" dpkg -P "${PKGS[@]}"
installed=0
check "... and nothing of them is left" \
  bash -c "! ls /usr/bin/dpnetd /usr/bin/echoserver /usr/lib/*/libdpnet.so.0 /etc/dpnet $UNIT 2>/dev/null | grep -q ."
finish
