#!/usr/bin/env bash
# Idempotent machine set-up for dpnet: Debian packages, lwIP source, hugepages.
# Safe to run repeatedly; does only what is missing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[setup] %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "setup.sh: must run as root (apt, hugepages)" >&2; exit 1; }

# dpdk-dev: testpmd, dumpcap, pdump, proc-info and dpdk-telemetry.py, which
# Debian's 22.11.11-0+deb12u1 moved there from dpdk (the tests use them).
PKGS=(libdpdk-dev dpdk dpdk-dev libconfig-dev check meson ninja-build pkg-config
      iproute2 iptables iputils-ping python3 python3-scapy sockperf dpkg-dev gcc clang
      libclang-rt-14-dev libfuzzer-14-dev procps psmisc curl wrk apache2-utils nginx-light
      python3-matplotlib patch libpcap-dev tcpdump libmemcached-tools python3-pymemcache
      # test/integration/t_servers.sh: unmodified servers on the sockets layer
      redis-server redis-tools memcached
      # tools/guest.sh: a Debian-kernel guest (flower, multiq, netem) under qemu
      qemu-system-x86 busybox-static kmod cpio)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# deb-src entry: copy of Debian's deb822 sources with Types: deb-src.
src_list=/etc/apt/sources.list.d/dpnet-debian-src.sources
need_update=0
if [ ! -f "$src_list" ]; then
  say "adding deb-src entry $src_list"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$src_list"
  else
    cat > "$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  need_update=1
fi

lwip_dir="$top/third_party/lwip"
# Our lwIP patches (config/lwip-*.patch) go onto Debian's pristine source;
# the stamp names the set applied, and another set fetches the source anew.
lwip_patches=("$top"/config/lwip-*.patch)
lwip_want=$(cat "${lwip_patches[@]}" | sha256sum | cut -d' ' -f1)
lwip_stamp="$lwip_dir/.dpnet-patches"
if [ -d "$lwip_dir/src/core" ] && [ "$(cat "$lwip_stamp" 2>/dev/null)" != "$lwip_want" ]; then
  say "lwIP patches changed: fetching the source anew"
  rm -rf "$lwip_dir"
fi
if [ ${#missing[@]} -gt 0 ] || [ "$need_update" -eq 1 ] || [ ! -d "$lwip_dir/src/core" ]; then
  say "apt-get update"
  # Unreachable third-party sources must not stop the set-up; Debian's are what we need.
  apt-get update -qq || say "apt-get update reported errors (continuing; Debian sources are what matter)"
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing: ${missing[*]}"
  # Packages with services (nginx) must not start them: tests and benchmarks
  # start their own instances inside namespaces.
  prc=/usr/sbin/policy-rc.d
  own_prc=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod +x "$prc"; own_prc=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "$own_prc" -eq 1 ]; then rm -f "$prc"; fi
fi
# The DPDK tools the tests run: a package that stops shipping one fails here,
# saying which, not as "command not found" deep inside a test.
for t in dpdk-testpmd dpdk-dumpcap dpdk-telemetry.py; do
  command -v "$t" >/dev/null || { echo "setup.sh: $t not found after installing ${PKGS[*]:0:3}: which Debian package ships it now?" >&2; exit 1; }
done

if [ ! -d "$lwip_dir/src/core" ]; then
  say "fetching lwIP source (apt-get source lwip) into $lwip_dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get source -qq lwip >/dev/null 2>&1) || { echo "setup.sh: apt-get source lwip failed" >&2; exit 1; }
  d=$(find "$tmp" -maxdepth 1 -type d -name 'lwip-*' | head -1)
  [ -n "$d" ] && [ -d "$d/src/core" ] || { echo "setup.sh: no lwip source tree in $tmp" >&2; exit 1; }
  for pf in "${lwip_patches[@]}"; do
    say "patching lwIP: $(basename "$pf")"
    patch -s -p1 -d "$d" <"$pf" || { echo "setup.sh: $pf does not apply to $(basename "$d")" >&2; exit 1; }
  done
  echo "$lwip_want" >"$d/.dpnet-patches"
  mkdir -p "$top/third_party"
  rm -rf "$lwip_dir"
  mv "$d" "$lwip_dir"
fi

# Hugepages: about 2 GiB of 2 MiB pages.
want=${DPNET_HUGEPAGES:-1024}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
  say "reserving $want hugepages of 2 MiB"
  echo "$want" > /proc/sys/vm/nr_hugepages
  have=$(cat /proc/sys/vm/nr_hugepages)
  [ "$have" -ge 512 ] || { echo "setup.sh: could reserve only $have hugepages" >&2; exit 1; }
fi
if ! mountpoint -q /dev/hugepages; then
  say "mounting hugetlbfs on /dev/hugepages"
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages
fi
say "ready: $(grep -E 'HugePages_(Total|Free)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
