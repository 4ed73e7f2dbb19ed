#!/usr/bin/env bash
# Run a shell script inside a Debian-kernel guest under qemu (software
# emulation). This machine's kernel has no modules: no TC flower, multiq,
# skbedit or netem, so net_tap's rte_flow and netem-based tests cannot run
# here; Debian's kernel has them all. The guest sees this machine's root
# read-only over 9p, so it runs our binaries, libraries and test scripts as
# they are; results come back through a writable 9p share.
#
#   tools/guest.sh prepare
#       Download and unpack Debian's kernel, build the module index and an
#       initramfs in $DPNET_GUEST_CACHE (default /var/cache/dpnet-guest).
#       Idempotent: stamps skip what is done.
#   tools/guest.sh run [--timeout S] [--pci] [--out DIR] [--console FILE]
#                      [--env NAME]... [--share DIR]... -- SCRIPT [ARGS...]
#       Boot the guest, run `bash SCRIPT ARGS` there (as root, chrooted into
#       this machine's root, in the caller's directory), power off. Exit
#       status: the script's, 124 on timeout (default 600 s), 125 when the
#       guest failed before or around the script (no status came back).
#       The script's output goes to the serial console, logged to
#       --console (default DIR/guest-console.log); --out DIR (default a new
#       /tmp/dpnet-guest-out.*) is the writable share. Prepares first if
#       needed.
#
# The guest's /tmp, /run, /root and /dev/shm are its own (tmpfs): it does
# not see the host's files there, except in DIR, in every --share DIR
# (read-only, at the same path) and in the caller's directory, which is
# shared that way too (a checkout and build under /tmp work). A SCRIPT
# elsewhere there is copied.
#
# Inside the guest the script gets PATH, the caller's DPNET_* variables,
# ASAN_OPTIONS/UBSAN_OPTIONS, any --env NAME, and:
#   GUEST_OUT           the --out directory (mounted at the same path, writable)
#   GUEST_KVER          the guest kernel version
#   GUEST_PCI_DPDK      (--pci) PCI address of the NIC bound to vfio-pci
#   GUEST_PCI_DPDK_MAC  (--pci) its MAC address
#   GUEST_PCI_PEER      (--pci) PCI address of the NIC e1000e drives
#   GUEST_PCI_PEER_IF   (--pci) its interface name (the Linux peer, wired
#                       back to back to the DPDK NIC)
# `modprobe NAME` works in the script (a wrapper adds -d for the module tree),
# and the kernel's own module requests (iptables, tc) are served too.
#
# Tunables: DPNET_GUEST_CACHE, DPNET_GUEST_MEM (3G), DPNET_GUEST_SMP (2),
# DPNET_GUEST_HUGEPAGES (512 pages of 2 MiB), DPNET_GUEST_ACCEL
# (tcg,thread=multi), DPNET_GUEST_APPEND (more kernel arguments).
# Nothing here touches the host's network: qemu gets no network but, with
# --pci, a socket netdev on 127.0.0.1 between its own two NICs.
# shellcheck disable=SC2054 # qemu's option values are comma-separated
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
CACHE=${DPNET_GUEST_CACHE:-/var/cache/dpnet-guest}
say() { printf '[guest] %s\n' "$*" >&2; }
die() { printf 'guest.sh: %s\n' "$*" >&2; exit 2; }

# Modules net_tap's rte_flow needs (PLATFORM.md), netem and veth: a test that
# asked for the guest relies on them, so a failure stops the run.
MODS_REQUIRED=(sch_multiq sch_ingress cls_flower act_skbedit act_gact act_mirred
               cls_bpf act_bpf tun sch_netem veth)
# Everything else (HTB, TBF, u32, iptables/nft with statistic and NFQUEUE,
# bridges, AF_PACKET...) the kernel requests itself when first used; the
# request reaches the chroot's modprobe (see stage 1), which is faster than
# loading a long list up front (about 1.5 s per modprobe under emulation).

# Stage 1 (initramfs) needs only what mounts the 9p root; dependencies are
# taken from the module index, in the order PLATFORM.md found
# (virtio_ring virtio virtio_pci_{modern,legacy}_dev virtio_pci 9pnet
# 9pnet_virtio netfs fscache 9p).
MODS_STAGE1=(virtio_pci 9pnet_virtio 9p)

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (apt, qemu, mounts)"; }

# The guest loads modules from the cache through the shared root: it must
# not be where the guest has its own tmpfs.
check_cache() {
  case $(realpath -m "$CACHE")/ in
    /tmp/* | /run/* | /var/run/* | /root/* | /dev/*)
      die "DPNET_GUEST_CACHE=$CACHE: the guest cannot see it (its /tmp, /run, /root, /dev are its own)" ;;
  esac
}

# need_cmd CMD PACKAGE: a clear message instead of "command not found".
need_cmd() {
  command -v "$1" >/dev/null 2>&1 ||
    die "$1 not found: install package $2 (tools/setup.sh installs it, or apt-get install $2)"
}

# ---------------------------------------------------------------- prepare

# The kernel package linux-image-amd64 points to (linux-image-6.1.0-NN-amd64).
kernel_pkg() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1
}

# The version prepared last, if its stamps say it is complete.
prepared_ver() {
  local v
  v=$(cat "$CACHE/current" 2>/dev/null) || return 1
  [ -n "$v" ] && [ -f "$CACHE/$v/.stamp-depmod" ] && [ -f "$CACHE/$v/initrd.img" ] || return 1
  echo "$v"
}

# The initramfs's /init: busybox sh, mounts everything the chroot needs, then
# runs stage 2 (this script's `_inside`) with the host's bash. Baked in: the
# module tree's path, so the kernel's module requests can be served.
stage1_init() { # MODS_DIR
  cat <<EOF
#!/bin/busybox sh
# dpnet guest stage 1 (built by tools/guest.sh prepare)
MODS='$1'
EOF
  cat <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
off() { sync; echo o >/proc/sysrq-trigger; sleep 30; }
die() { echo "guest-init: $*"; off; }
for m in $(cat /stage1.modules); do
  insmod "/lib/modules/$m" || die "insmod $m failed"
done
R=/newroot
o9p=trans=virtio,version=9p2000.L,msize=512000
# The host root: cache=loose (read-only, nothing changes under us that the
# guest must see) makes exec and library loads fast enough.
mount -t 9p -o $o9p,cache=loose,ro hostroot $R || die "cannot mount the host root (9p)"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm $R/dev/hugepages
mount -t devpts devpts $R/dev/pts
# What udev would add: bash's process substitution needs /dev/fd.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t hugetlbfs nodev $R/dev/hugepages
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=755 tmpfs $R/run
mount -t tmpfs -o mode=700 tmpfs $R/root
[ -L $R/var/run ] || mount -t tmpfs -o mode=755 tmpfs $R/var/run
# Writable shares: no cache, so every write reaches the host at once.
C=$R/run/dpnet-guest/ctl
mkdir -p $C
mount -t 9p -o $o9p ctl $C || die "cannot mount the control share"
# The caller's directories the guest's tmpfs would hide, read-only at the
# same path (before the output share, which may lie inside one).
while read -r tag dir; do
  mkdir -p "$R$dir" 2>/dev/null
  mount -t 9p -o $o9p,cache=loose,ro "$tag" "$R$dir" || die "cannot mount the share $dir"
done <$C/shares
OUT=$(cat $C/outdir)
mkdir -p "$R$OUT" 2>/dev/null
mount -t 9p -o $o9p out "$R$OUT" || die "cannot mount the output share on $OUT"
# Kernel module requests run in the initramfs's root: send them into the
# chroot's kmod with the module tree (there is no /lib/modules/VER there).
printf '#!/bin/busybox sh\nexec /bin/busybox chroot %s /sbin/modprobe -d %s "$@"\n' $R "$MODS" >/bin/guest-modprobe
chmod 755 /bin/guest-modprobe
echo /bin/guest-modprobe >/proc/sys/kernel/modprobe
chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  /bin/bash /run/dpnet-guest/ctl/guest.sh _inside
rc=$?
[ -s $C/rc ] || echo "guest-init: stage 2 ended with status $rc and no status for the host"
# Power off from here, not from stage 2: once it starts, the 9p root goes
# away under whatever runs from it.
off
EOF
}

# build_initrd VER DIR: busybox, the stage-1 modules (uncompressed: busybox's
# insmod reads plain ELF), /init.
build_initrd() {
  local ver=$1 d=$2 w m f n list
  list=$(stage1_module_files "$ver" "$d")
  w=$(mktemp -d "$d/initrd.XXXXXX")
  mkdir -p "$w"/{bin,dev,proc,sys,newroot,lib/modules}
  cp /bin/busybox "$w/bin/busybox"
  mknod -m 600 "$w/dev/console" c 5 1
  : >"$w/stage1.modules"
  n=0
  for m in $list; do
    n=$((n + 1))
    f=$(printf '%02d-%s' "$n" "$(basename "$m" | sed 's/\.\(xz\|zst\|gz\)$//')")
    case $m in
      *.xz) xz -dc "$m" >"$w/lib/modules/$f" ;;
      *.zst) zstd -qdc "$m" >"$w/lib/modules/$f" ;;
      *.gz) gzip -dc "$m" >"$w/lib/modules/$f" ;;
      *) cp "$m" "$w/lib/modules/$f" ;;
    esac
    echo "$f" >>"$w/stage1.modules"
  done
  stage1_init "$d/mods" >"$w/init"
  chmod 755 "$w/init"
  (cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) >"$d/initrd.img.tmp"
  mv "$d/initrd.img.tmp" "$d/initrd.img"
  rm -rf "$w"
  say "initramfs $(du -h "$d/initrd.img" | cut -f1), stage-1 modules: $(stage1_module_files "$ver" "$d" | xargs -n1 basename | tr '\n' ' ')"
}

# The .ko files stage 1 loads, dependencies first, each once.
stage1_module_files() { # VER DIR
  local m
  for m in "${MODS_STAGE1[@]}"; do
    modprobe -d "$2/mods" -S "$1" --show-depends "$m" ||
      die "module $m not in the kernel package's module tree"
  done | awk '$1 == "insmod" && !seen[$2]++ {print $2}'
}

# A digest of everything the initramfs is made of: a changed /init (this
# script), busybox or module set rebuilds it.
initrd_digest() { # VER DIR
  { stage1_init "$2/mods"; stage1_module_files "$1" "$2"; sha256sum /bin/busybox; } | sha256sum | cut -d' ' -f1
}

cmd_prepare() {
  need_root
  check_cache
  need_cmd apt-get apt
  need_cmd dpkg-deb dpkg
  need_cmd depmod kmod
  need_cmd modprobe kmod
  need_cmd cpio cpio
  need_cmd gzip gzip
  need_cmd qemu-system-x86_64 qemu-system-x86
  # The initramfs has no libraries: busybox must be the static build.
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
    die "busybox-static is not installed: tools/setup.sh installs it, or apt-get install busybox-static"
  mkdir -p "$CACHE"
  # One prepare at a time (tests may start in parallel).
  exec 9>"$CACHE/.lock"
  flock 9

  local pkg ver d have
  have=$(prepared_ver || true)
  pkg=$(kernel_pkg)
  if [ -z "$pkg" ]; then
    say "apt-cache does not know linux-image-amd64: apt-get update"
    apt-get update -qq || say "apt-get update reported errors"
    pkg=$(kernel_pkg)
  fi
  if [ -z "$pkg" ]; then
    [ -n "$have" ] || die "apt-cache depends linux-image-amd64 names no linux-image-6.1.0-NN-amd64 (is Debian's main archive in the apt sources?)"
    say "apt names no kernel package; keeping $have"
    pkg=linux-image-$have
  fi
  ver=${pkg#linux-image-}
  d=$CACHE/$ver
  mkdir -p "$d/deb"

  if [ ! -f "$d/.stamp-deb" ]; then
    say "downloading $pkg into $d/deb"
    rm -f "$d"/deb/*.deb
    if ! (cd "$d/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null); then
      say "apt-get download failed: apt-get update and retry"
      apt-get update -qq || true
      if ! (cd "$d/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null); then
        if [ -n "$have" ] && [ "$have" != "$ver" ]; then
          say "cannot download $pkg; keeping the prepared $have"
          echo "$have" >"$CACHE/current"
          return 0
        fi
        die "apt-get download $pkg failed"
      fi
    fi
    ls "$d"/deb/*.deb >/dev/null 2>&1 || die "apt-get download $pkg left no .deb in $d/deb"
    touch "$d/.stamp-deb"
  fi

  if [ ! -f "$d/.stamp-unpack" ]; then
    local deb
    deb=$(find "$d/deb" -name '*.deb' | head -1)
    say "unpacking $(basename "$deb")"
    rm -rf "$d/pkg" "$d/pkg.tmp"
    dpkg-deb -x "$deb" "$d/pkg.tmp"
    mv "$d/pkg.tmp" "$d/pkg"
    touch "$d/.stamp-unpack"
  fi
  [ -f "$d/pkg/boot/vmlinuz-$ver" ] || die "no boot/vmlinuz-$ver in $pkg"

  if [ ! -f "$d/.stamp-depmod" ]; then
    # The .deb ships no modules.dep (its postinst runs depmod): index a
    # hard-linked copy so the unpacked package stays as shipped.
    local src=$d/pkg/lib/modules/$ver
    [ -d "$src" ] || src=$d/pkg/usr/lib/modules/$ver
    [ -d "$src" ] || die "no lib/modules/$ver in $pkg"
    say "depmod $ver"
    rm -rf "$d/mods"
    mkdir -p "$d/mods/lib/modules"
    cp -al "$src" "$d/mods/lib/modules/$ver"
    depmod -b "$d/mods" "$ver"
    touch "$d/.stamp-depmod"
  fi

  local want
  want=$(initrd_digest "$ver" "$d")
  if [ ! -f "$d/initrd.img" ] || [ "$(cat "$d/.stamp-initrd" 2>/dev/null)" != "$want" ]; then
    say "building the initramfs"
    build_initrd "$ver" "$d"
    echo "$want" >"$d/.stamp-initrd"
  fi
  ln -sf "pkg/boot/vmlinuz-$ver" "$d/vmlinuz"
  echo "$ver" >"$CACHE/current"
  say "prepared: kernel $ver in $d"
}

# ---------------------------------------------------------------- run (host)

# A TCP port free on the loopback now (qemu listens on it a moment later).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
  done
  die "no free loopback port found"
}

qpath() { printf '%s' "${1//,/,,}"; } # qemu option values double their commas

cmd_run() {
  local timeout=600 pci=0 out="" console="" extra_env=() shares=()
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) timeout=$2; shift 2 ;;
      --timeout=*) timeout=${1#*=}; shift ;;
      --pci) pci=1; shift ;;
      --out) out=$2; shift 2 ;;
      --out=*) out=${1#*=}; shift ;;
      --console) console=$2; shift 2 ;;
      --env) extra_env+=("$2"); shift 2 ;;
      --share) shares+=("$2"); shift 2 ;;
      --) shift; break ;;
      [!-]*) break ;;
      *) die "run: unknown option $1 (usage: run [--timeout S] [--pci] [--out DIR] [--console FILE] [--env NAME]... -- SCRIPT [ARGS...])" ;;
    esac
  done
  [ $# -ge 1 ] || die "run: no SCRIPT (usage: run [options] -- SCRIPT [ARGS...])"
  if ! [[ $timeout =~ ^[1-9][0-9]*$ ]]; then die "run: --timeout wants seconds, not '$timeout'"; fi
  need_root
  check_cache
  need_cmd qemu-system-x86_64 qemu-system-x86
  need_cmd setpriv util-linux
  local script=$1; shift
  [ -f "$script" ] || die "run: no script $script"
  script=$(realpath "$script")

  local ver
  # shellcheck disable=SC2015
  ver=$(prepared_ver) && [ "$(cat "$CACHE/$ver/.stamp-initrd" 2>/dev/null)" = "$(initrd_digest "$ver" "$CACHE/$ver")" ] ||
    { say "not prepared (or the initramfs is stale): preparing"; (cmd_prepare); ver=$(prepared_ver); }
  local d=$CACHE/$ver

  if [ -z "$out" ]; then out=$(mktemp -d /tmp/dpnet-guest-out.XXXXXX); else mkdir -p "$out"; fi
  out=$(realpath "$out")
  [ "$out" != / ] || die "run: --out cannot be /"
  # The guest has its own /tmp, /run and /root (tmpfs): what the caller
  # needs from there comes as read-only shares at the same path, the
  # caller's directory among them.
  local hidden=() x
  for x in "$PWD" "${shares[@]}"; do
    [ -d "$x" ] || die "run: --share $x: no such directory"
    x=$(realpath "$x")
    case $x in
      /tmp/* | /run/* | /var/run/* | /root/*)
        [[ $x != *[[:space:]]* ]] || die "run: cannot share $x (white space in the path)"
        hidden+=("$x") ;;
    esac
  done
  # A script there is invisible to the guest unless it is in the output
  # directory or a share. Run a copy.
  local gscript=$script seen=0
  for x in "$out" "${hidden[@]}"; do
    case $script in "$x"/*) seen=1 ;; esac
  done
  if [ $seen = 0 ]; then
    case $script in
      /tmp/* | /run/* | /var/run/* | /root/* | /dev/*)
        gscript=/run/dpnet-guest/ctl/script/$(basename "$script")
        say "note: the guest does not see $script (its $(cut -d/ -f2 <<<"$script") is its own): running a copy" ;;
    esac
  fi
  [ -n "$console" ] || console=$out/guest-console.log
  : >"$console"
  console=$(realpath "$console")
  local ctl
  ctl=$(mktemp -d /tmp/dpnet-guest-ctl.XXXXXX)
  CTL=$ctl QPID=""
  # Whatever happens on this side, qemu does not outlive us.
  trap 'stop_qemu; rm -rf "$CTL"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # The job: what stage 2 sources. printf %q keeps any value intact.
  if [ "$gscript" != "$script" ]; then mkdir "$ctl/script"; cp "$script" "$ctl/script/"; fi
  echo "$out" >"$ctl/outdir"
  : >"$ctl/shares"
  local k=0
  for x in "${hidden[@]}"; do
    awk -v d="$x" '$2 == d { f = 1 } END { exit !f }' "$ctl/shares" && continue
    echo "sh$k $x" >>"$ctl/shares"
    k=$((k + 1))
  done
  # Stage 2 is this script, as a copy: a checkout under /tmp is not
  # visible in the guest.
  cp "$SELF" "$ctl/guest.sh"
  {
    printf 'GUEST_PCI=%q\nGUEST_HUGEPAGES=%q\nGUEST_MODS=%q\nGUEST_CWD=%q\n' \
      "$pci" "${DPNET_GUEST_HUGEPAGES:-512}" "$d/mods" "$PWD"
    printf 'GUEST_ARGV=('; printf '%q ' "$gscript" "$@"; printf ')\n'
    local n
    for n in PATH ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS $(compgen -e | grep '^DPNET_' || true) "${extra_env[@]}"; do
      if [ -n "${!n+x}" ]; then printf 'export %s=%q\n' "$n" "${!n}"; fi
    done
    printf 'export GUEST_OUT=%q GUEST_KVER=%q\n' "$out" "$ver"
  } >"$ctl/job"

  local append="console=ttyS0 panic=1 loglevel=4 ${DPNET_GUEST_APPEND:-}"
  local qargs=(-nodefaults -no-user-config -machine q35
    -accel "${DPNET_GUEST_ACCEL:-tcg,thread=multi}" -cpu max
    -smp "${DPNET_GUEST_SMP:-2}" -m "${DPNET_GUEST_MEM:-3G}"
    -display none -monitor none -no-reboot
    -chardev "file,id=con0,path=$(qpath "$console")" -serial chardev:con0
    -kernel "$d/vmlinuz" -initrd "$d/initrd.img")
  if [ "$pci" -eq 1 ]; then
    # The IOMMU comes before every other PCI device.
    qargs+=(-device intel-iommu,intremap=on,aw-bits=48)
    append+=" intel_iommu=on iommu=pt"
  fi
  qargs+=(-fsdev "local,id=hr,path=/,security_model=none,readonly=on,multidevs=remap"
    -device virtio-9p-pci,fsdev=hr,mount_tag=hostroot
    -fsdev "local,id=ctl,path=$(qpath "$ctl"),security_model=none,multidevs=remap"
    -device virtio-9p-pci,fsdev=ctl,mount_tag=ctl
    -fsdev "local,id=out,path=$(qpath "$out"),security_model=none,multidevs=remap"
    -device virtio-9p-pci,fsdev=out,mount_tag=out)
  local tag dir
  while read -r tag dir; do
    qargs+=(-fsdev "local,id=$tag,path=$(qpath "$dir"),security_model=none,readonly=on,multidevs=remap"
      -device "virtio-9p-pci,fsdev=$tag,mount_tag=$tag")
  done <"$ctl/shares"
  if [ "$pci" -eq 1 ]; then
    # Two NICs wired back to back inside this qemu, over loopback TCP.
    local port
    port=$(free_port)
    qargs+=(-netdev "socket,id=n0,listen=127.0.0.1:$port"
      -device e1000e,netdev=n0,mac=52:54:00:d9:00:10,bus=pcie.0,addr=0x10
      -netdev "socket,id=n1,connect=127.0.0.1:$port"
      -device e1000e,netdev=n1,mac=52:54:00:d9:00:11,bus=pcie.0,addr=0x11)
  fi
  qargs+=(-append "$append")

  say "kernel $ver, timeout ${timeout}s$([ "$pci" -eq 0 ] || echo ', --pci'), console log: $console"
  say "output directory: $out"
  local t0=$SECONDS
  # Killed with us even when we are killed with -9 (no trap runs then).
  setpriv --pdeathsig KILL -- qemu-system-x86_64 "${qargs[@]}" >"$ctl/qemu.log" 2>&1 &
  QPID=$!
  local rc=""
  while kill -0 "$QPID" 2>/dev/null; do
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      say "timed out after ${timeout}s: stopping qemu (pid $QPID)"
      stop_qemu
      rc=124
      break
    fi
    sleep 0.5
  done
  if [ -z "$rc" ]; then
    local qrc=0
    wait "$QPID" || qrc=$?
    QPID=""
    if [ -s "$ctl/rc" ]; then
      rc=$(cat "$ctl/rc")
    else
      say "the guest reported no exit status (qemu exited $qrc)"
      sed 's/^/[qemu] /' "$ctl/qemu.log" >&2
      rc=125
    fi
  fi
  say "exit status $rc after $((SECONDS - t0))s; console log: $console"
  if [ "$rc" -ne 0 ]; then
    say "last 40 lines of the console:"
    tail -40 "$console" | sed 's/^/  | /' >&2
  fi
  return "$rc"
}

stop_qemu() {
  [ -n "${QPID:-}" ] || return 0
  kill -TERM "$QPID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$QPID" 2>/dev/null || true
  wait "$QPID" 2>/dev/null || true
  QPID=""
}

# ---------------------------------------------------------------- stage 2 (guest)

# Runs in the guest, chrooted into the host's root, as the initramfs's child,
# which powers off when it returns. Writes the status the host returns.
up() { cut -d' ' -f1 /proc/uptime; }
cmd_inside() {
  set +e
  local ctl=/run/dpnet-guest/ctl
  fail() { echo "guest: $*"; echo 125 >"$ctl/rc"; exit 125; }
  # shellcheck disable=SC1091
  source "$ctl/job" || fail "cannot read the job"
  export HOME=/root
  dmesg -n 4 2>/dev/null # kernel chatter below warnings stays off the console
  echo "guest: stage 2 at $(up) s"
  ip link set lo up

  # `modprobe NAME` in the script: a wrapper with the module tree.
  mkdir -p /run/dpnet-guest/bin
  printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$GUEST_MODS" >/run/dpnet-guest/bin/modprobe
  chmod 755 /run/dpnet-guest/bin/modprobe
  export PATH=/run/dpnet-guest/bin:$PATH
  # One modprobe for all: each process start costs more than the loading.
  # Built-in modules count as loaded.
  modprobe -a "${MODS_REQUIRED[@]}" || fail "modprobe -a ${MODS_REQUIRED[*]} failed"
  echo "guest: modules loaded at $(up) s"

  echo "$GUEST_HUGEPAGES" >/proc/sys/vm/nr_hugepages
  local hp
  hp=$(cat /proc/sys/vm/nr_hugepages)
  [ "$hp" -ge "$GUEST_HUGEPAGES" ] || fail "only $hp of $GUEST_HUGEPAGES hugepages reserved"

  if [ "$GUEST_PCI" = 1 ]; then guest_pci || fail "PCI set-up failed"; fi

  cd "$GUEST_CWD" 2>/dev/null || { echo "guest: no $GUEST_CWD here (tmpfs?): starting in /"; cd /; }
  echo "guest: kernel $(uname -r), $hp hugepages; at $(up) s running: ${GUEST_ARGV[*]}"
  bash "${GUEST_ARGV[@]}" </dev/null
  local rc=$?
  echo "guest: script exited with status $rc at $(up) s"
  echo "$rc" >"$ctl/rc"
  sync
}

# --pci: 00:10.0 to vfio-pci for DPDK, 00:11.0 to e1000e as its Linux peer.
# Modules are not loaded for devices by themselves here (no udev): vfio
# claims the first before e1000e is loaded, so e1000e gets only the second.
guest_pci() {
  local dpdk=0000:00:10.0 peer=0000:00:11.0 s=/sys/bus/pci/devices ifc=""
  modprobe vfio && modprobe vfio_iommu_type1 && modprobe vfio-pci || return 1
  if [ ! -e $s/$dpdk ] || [ ! -e $s/$peer ]; then echo "guest: no NICs at $dpdk and $peer"; return 1; fi
  echo vfio-pci >$s/$dpdk/driver_override
  [ -e $s/$dpdk/driver ] && echo $dpdk >$s/$dpdk/driver/unbind
  echo $dpdk >/sys/bus/pci/drivers_probe
  [ "$(basename "$(readlink $s/$dpdk/driver)")" = vfio-pci ] || { echo "guest: $dpdk not bound to vfio-pci"; return 1; }
  modprobe e1000e || return 1
  for _ in $(seq 100); do
    for ifc in "$s/$peer"/net/*; do :; done
    ifc=$(basename "$ifc")
    [ "$ifc" != "*" ] && break
    ifc=""
    sleep 0.1
  done
  [ -n "$ifc" ] || { echo "guest: e1000e made no interface for $peer"; return 1; }
  export GUEST_PCI_DPDK=$dpdk GUEST_PCI_PEER=$peer GUEST_PCI_PEER_IF=$ifc GUEST_PCI_DPDK_MAC=52:54:00:d9:00:10
  echo "guest: $dpdk on vfio-pci (group $(basename "$(readlink $s/$dpdk/iommu_group)")), $peer is $ifc"
}

case ${1:-} in
  prepare) shift; cmd_prepare "$@" ;;
  run) shift; cmd_run "$@" ;;
  _inside) shift; cmd_inside "$@" ;;
  *) sed -n '2,/^# shellcheck/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
