#!/usr/bin/env bash
# Debian packages of dpnet, from this checkout (dpkg-deb; Depends from
# dpkg-shlibdeps):
#   libdpnet0       the library
#   libdpnet-dev    dpnet.h, dpnet.pc, libdpnet.so and libdpnet.a
#   dpnet           dpnetd, dpnetctl, dpnet-run; dpnetd.service with
#                   /etc/dpnet/dpnetd.conf and /etc/default/dpnetd; the
#                   hugepage set-up the unit runs first
#   dpnet-examples  echoserver, httpd, kvd, net_latency
#
#   tools/package.sh [--out DIR] [--build DIR]
#
# --build: the meson build directory to use (made with prefix /usr when it
# does not exist; default build-pkg). Prints the .deb files it wrote.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/packages build=$top/build-pkg
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "package.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
for t in dpkg-deb dpkg-shlibdeps meson ninja; do
  command -v "$t" >/dev/null || { echo "package.sh: $t is missing (apt-get install dpkg-dev meson ninja-build)" >&2; exit 1; }
done
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
arch=$(dpkg --print-architecture)
multi=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

[ -d "$build" ] || meson setup "$build" "$top" --prefix=/usr --buildtype=release -Dwerror=true >/dev/null
[ "$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')" = /usr ] ||
  { echo "package.sh: $build is not configured with --prefix=/usr" >&2; exit 1; }
ninja -C "$build" >/dev/null

work=$(mktemp -d /tmp/dpnet-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
meson install -C "$build" --destdir "$stage" --quiet >/dev/null
mkdir -p "$out"

# pkg NAME: an empty package tree; files go under $work/NAME.
pkg() { mkdir -p "$work/$1/DEBIAN"; }
move() { # NAME PATH...: move staged paths into package NAME
  local p=$1 f; shift
  for f in "$@"; do
    mkdir -p "$work/$p/$(dirname "$f")"
    mv "$stage/$f" "$work/$p/$f"
  done
}
# depends NAME [extra]: the shared libraries its ELF files need, as Depends.
depends() {
  local p=$1 extra=${2:-} elfs deps
  elfs=$(find "$work/$p" -type f -not -path '*/DEBIAN/*' -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print)
  deps=""
  if [ -n "$elfs" ]; then
    mkdir -p "$work/dsh/debian"
    printf 'Source: dpnet\n\nPackage: %s\nArchitecture: any\n' "$p" >"$work/dsh/debian/control"
    # shellcheck disable=SC2086
    deps=$(cd "$work/dsh" && dpkg-shlibdeps -O --ignore-missing-info -l"$work/libdpnet0/usr/lib/$multi" \
      -xlibdpnet0 $elfs 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  fi
  echo "${deps}${extra:+${deps:+, }$extra}"
}
control() { # NAME DEPENDS DESCRIPTION [SECTION]
  cat >"$work/$1/DEBIAN/control" <<EOF
Package: $1
Version: $version
Architecture: $arch
Maintainer: dpnet developers <dpnet@localhost>
Section: ${4:-net}
Priority: optional
Depends: $2
Installed-Size: $(du -sk --exclude=DEBIAN "$work/$1" | cut -f1)
Description: $3
EOF
}

pkg libdpnet0
move libdpnet0 "usr/lib/$multi/libdpnet.so.0" "usr/lib/$multi/libdpnet.so.$version"
pkg libdpnet-dev
move libdpnet-dev usr/include/dpnet.h "usr/lib/$multi/libdpnet.so" "usr/lib/$multi/libdpnet.a" \
  "usr/lib/$multi/pkgconfig/dpnet.pc"
pkg dpnet
move dpnet usr/bin/dpnetd usr/bin/dpnetctl "usr/lib/$multi/libdpnet-posix.so"
install -D -m 755 "$top/tools/dpnet-run" "$work/dpnet/usr/bin/dpnet-run"
install -D -m 755 "$top/tools/dpnet-hugepages" "$work/dpnet/usr/lib/dpnet/dpnet-hugepages"
install -D -m 644 "$top/tools/dpnetd.service" "$work/dpnet/lib/systemd/system/dpnetd.service"
install -D -m 644 "$top/config/dpnetd-tap.conf" "$work/dpnet/etc/dpnet/dpnetd.conf"
install -D -m 644 "$top/tools/dpnetd.default" "$work/dpnet/etc/default/dpnetd"
for c in dpnetd-ixgbe.conf dpnetd-tap.conf ixgbe.conf tap.conf worker.conf; do
  install -D -m 644 "$top/config/$c" "$work/dpnet/usr/share/doc/dpnet/examples/$c"
done
install -D -m 644 "$top/README.md" "$work/dpnet/usr/share/doc/dpnet/README.md"
printf '/etc/dpnet/dpnetd.conf\n/etc/default/dpnetd\n' >"$work/dpnet/DEBIAN/conffiles"
pkg dpnet-examples
move dpnet-examples usr/bin/echoserver usr/bin/httpd usr/bin/kvd usr/bin/net_latency
left=$(cd "$stage" && find . -type f -o -type l)
[ -z "$left" ] || { echo "package.sh: installed files in no package: $left" >&2; exit 1; }

control libdpnet0 "$(depends libdpnet0)" "dpnet: user-level TCP/IP stack on DPDK (library)
 One lwIP instance per core on its own RX/TX queue pair, steered by NIC
 filters or by dpnetd. This package has the shared library." libs
control libdpnet-dev "libdpnet0 (= $version), libdpdk-dev, libconfig-dev" "dpnet: user-level TCP/IP stack on DPDK (development files)
 dpnet.h, dpnet.pc (pkg-config --cflags --libs dpnet) and the static library." libdevel
control dpnet "$(depends dpnet "libdpnet0 (= $version), dpdk")" "dpnet: user-level TCP/IP stack on DPDK (daemon and tools)
 dpnetd owns the port as DPDK primary, hands out queues and ports to
 workers, programs the flow rules and answers ARP/ICMP; dpnetctl looks
 inside it; dpnet-run starts workers (and, with --preload and
 libdpnet-posix.so, unmodified socket programs). dpnetd.service runs it."
control dpnet-examples "$(depends dpnet-examples "libdpnet0 (= $version)")" "dpnet: user-level TCP/IP stack on DPDK (example programs)
 echoserver (TCP/UDP echo), httpd (HTTP/1.1 static files), kvd (memcached
 text protocol) and net_latency
 (round-trip client), standalone or attached to dpnetd."

for p in libdpnet0 libdpnet-dev dpnet dpnet-examples; do
  find "$work/$p" -type d -exec chmod 755 {} +
  dpkg-deb --root-owner-group --build "$work/$p" "$out/${p}_${version}_${arch}.deb" >/dev/null
  echo "$out/${p}_${version}_${arch}.deb"
done
