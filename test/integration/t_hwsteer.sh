#!/usr/bin/env bash
# dpnetd's hardware steering (rte_flow rules, which net_tap turns into TC
# flower rules) exercised for real: this machine's kernel has no flower, so
# guest_hwsteer.sh runs inside a Debian-kernel guest under qemu
# (tools/guest.sh), and its checks are reported here.
source "$(dirname "$0")/lib.sh"
guest_run guest_hwsteer.sh
finish
