#!/usr/bin/env bash
# libdpnet as a product: meson install puts the shared and static library,
# dpnet.h and dpnet.pc in place; a program outside the tree builds with
# pkg-config alone and runs.
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
cp "$SRC/test/install/minimal.c" "$WORK/"
check "outside program builds: cc minimal.c \$(pkg-config --cflags --libs dpnet)" \
  bash -c "cd $WORK && cc -std=c11 -Wall -Wextra -Werror minimal.c $flags -o minimal"
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
finish
