#!/usr/bin/env bash
# The PCI path for real: two emulated e1000e NICs in a Debian-kernel guest
# (tools/guest.sh --pci: vfio-pci behind an emulated IOMMU), a standalone
# echoserver and dpnetd with a dpnet-run worker on one, the Linux peer on
# the other (guest_pci.sh); its checks are reported here.
source "$(dirname "$0")/lib.sh"
top=$(cd "$HERE/../.." && pwd)
OUT=$(mktemp -d /tmp/dpn-pci-$TAG.XXXXXX)
track_file "$OUT"
rc=0
# The checkout and the build are shared with the guest even where its own
# tmpfs would hide them (a clone under /tmp).
(cd "$top" && DPNET_BUILD=$B DPNET_GUEST_LOG=$OUT/checks.log timeout 850 bash tools/guest.sh run \
  --timeout 800 --pci --out "$OUT" --share "$B" -- "$HERE/guest_pci.sh" >"$OUT/run.log" 2>&1) || rc=$?
while IFS= read -r line; do
  case $line in
    "ok - "*) ok "guest: ${line#ok - }" ;;
    "not ok - "*) not_ok "guest: ${line#not ok - }" ;;
    "# "*) echo "$line" ;;
  esac
done < <(tr -d '\r' <"$OUT/checks.log" 2>/dev/null || true)
check "the guest ran guest_pci.sh to its end (exit $rc)" test "$rc" -eq 0
if last_failed; then
  tail -30 "$OUT/run.log" | sed 's/^/# /'
  [ -f "$OUT/guest-console.log" ] && tail -40 "$OUT/guest-console.log" | tr -d '\r' | sed 's/^/# console: /'
fi
finish
