#!/usr/bin/env bash
# libdpnet as a product: meson install puts the shared and static library,
# dpnet.h and dpnet.pc in place; a program outside the tree builds with
# pkg-config alone (-Wpedantic, no DPDK flag on its command line) and runs;
# installed to a prefix of one's own, the installed programs run as they
# are (rpath), with no LD_LIBRARY_PATH.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$HERE/../.." && pwd)
# The plain build (tools/test.sh always makes it): an outside program is not
# built with the sanitizers, so it cannot load an ASan-instrumented library.
# DPNET_PLAIN_BUILD picks another plain build (for working on this test).
B=${DPNET_PLAIN_BUILD:-$SRC/build}
DEST=$(mktemp -d /tmp/dpn-install.XXXXXX); track_file "$DEST"
check "meson install" meson install -C "$B" --destdir "$DEST" --quiet
PC=$(find "$DEST" -name dpnet.pc | head -1)
check "dpnet.pc installed" test -n "$PC"
check "shared and static libraries installed" \
  bash -c "ls $DEST/usr/local/lib/*/libdpnet.so $DEST/usr/local/lib/*/libdpnet.a >/dev/null"
check "dpnet.h installed" test -f "$DEST/usr/local/include/dpnet.h"
# The shared library exports dpnet.h's API and nothing else: not lwIP, not
# the internals (dpnetd and the tests link the static library).
exported=$(nm -D --defined-only "$(ls "$DEST"/usr/local/lib/*/libdpnet.so)" | awk '$2 ~ /^[TDBR]$/ {sub(/@.*/, "", $3); print $3}')
others=$(grep -v '^dpn_' <<<"$exported" | tr '\n' ' ' || true)
check "libdpnet.so exports only dpn_* ($(wc -l <<<"$exported") symbols; others: ${others:-none})" test -z "$others"
undeclared=$(for f in $(grep '^dpn_' <<<"$exported" || true); do
  grep -q "\b$f(" "$SRC/stack/dpnet.h" || echo "$f"
done | tr '\n' ' ')
check "... each one declared in dpnet.h (not: ${undeclared:-none})" test -z "$undeclared"
WORK=$(mktemp -d /tmp/dpn-outside.XXXXXX); track_file "$WORK"
# Installed under --destdir: point the .pc file's prefix there (what a real
# install to /usr/local needs no help for).
mkdir "$WORK/pc"
sed "s|^prefix=.*|prefix=$DEST/usr/local|" "$PC" >"$WORK/pc/dpnet.pc"
export PKG_CONFIG_PATH=$WORK/pc
flags=$(pkg-config --cflags --libs dpnet)
echo "# pkg-config --cflags --libs dpnet: $flags"
check "no DPDK flag reaches the application (rte_config.h, -march, DPDK's include paths, -lrte_*)" \
  bash -c "! grep -qE 'rte_config|-march|dpdk|-include|-lrte_|libnl|dbus' <<<'$flags'"
sflags=$(pkg-config --static --libs dpnet)
check "... a static link gets DPDK's libraries (Libs.private)" grep -q -- "-lrte_eal" <<<"$sflags"
cp "$SRC/test/install/minimal.c" "$WORK/"
check "outside program builds: cc -std=c11 -Wall -Wextra -Wpedantic minimal.c \$(pkg-config --cflags --libs dpnet)" \
  bash -c "cd $WORK && cc -std=c11 -Wall -Wextra -Wpedantic -Werror minimal.c $flags -o minimal"
check "... and as C++ (the header's extern \"C\")" \
  bash -c "cd $WORK && printf '#include <dpnet.h>\nint main() { return dpn_version() == nullptr; }\n' >cxx.cc && \
    g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror cxx.cc $flags -o cxx"
LIBDIR=$(dirname "$(ls "$DEST"/usr/local/lib/*/libdpnet.so)")
# Its exit status is the verdict (a pipe into grep judged only grep's);
# the line shows it got as far as serving.
OUT=$WORK/minimal.out
rc=0
LD_LIBRARY_PATH=$LIBDIR timeout 20 "$WORK/minimal" -l 0 --no-pci --in-memory --vdev=net_null0,no-rx=1 \
  -- --ip 10.0.0.2/24 --poll hybrid --run-ms 200 >"$OUT" 2>&1 || rc=$?
check "outside program runs on net_null and stops on its timer: exit 0 (got $rc)" test "$rc" -eq 0
check "... after serving ('echo on port 7')" grep -q 'echo on port 7' "$OUT"
last_failed && tail -5 "$OUT" | sed 's/^/# /'
check "it linked the installed library, not the build tree's" \
  bash -c "LD_LIBRARY_PATH=$LIBDIR ldd $WORK/minimal | grep -q '$LIBDIR/libdpnet.so'"

# A prefix of one's own: configure, install, run the installed echoserver
# as it is. Its RUNPATH names the prefix's libdir.
P=$(mktemp -d /tmp/dpn-prefix.XXXXXX); track_file "$P"
BP=$(mktemp -d /tmp/dpn-build.XXXXXX); track_file "$BP"
check "meson setup --prefix $P (a prefix of one's own)" \
  bash -c "meson setup '$BP' '$SRC' --prefix '$P' -Dtests=false >'$BP.log' 2>&1"
check "meson install there" bash -c "meson install -C '$BP' --quiet >>'$BP.log' 2>&1"
last_failed && tail -20 "$BP.log" | sed 's/^/# /'
track_file "$BP.log"
ES=$P/bin/echoserver
check "the installed echoserver's RUNPATH is the prefix's libdir" \
  bash -c "readelf -d '$ES' | grep -E 'RUNPATH|RPATH' | grep -q '$P/lib'"
rc=0
env -u LD_LIBRARY_PATH timeout --preserve-status -s INT 3 "$ES" -l 0 --no-pci --in-memory --vdev=net_null0,no-rx=1 \
  -- --ip 10.0.0.2/24 --poll hybrid >"$WORK/es.out" 2>&1 || rc=$?
check "it runs as installed, no LD_LIBRARY_PATH, and stops on SIGINT (exit $rc)" \
  bash -c "[ $rc = 0 ] && grep -q 'listening on port' '$WORK/es.out'"
last_failed && tail -5 "$WORK/es.out" | sed 's/^/# /'
check "... on the installed library" \
  bash -c "env -u LD_LIBRARY_PATH ldd '$ES' | grep -q '$P/lib/.*libdpnet.so'"
check "the prefix's dpnet.pc names the prefix" grep -q "^prefix=$P\$" "$(find "$P" -name dpnet.pc)"
finish
