#!/usr/bin/env bash
# The PCI path for real: two emulated e1000e NICs in a Debian-kernel guest
# (tools/guest.sh --pci: vfio-pci behind an emulated IOMMU), a standalone
# echoserver and dpnetd with a dpnet-run worker on one, the Linux peer on
# the other (guest_pci.sh); its checks are reported here.
source "$(dirname "$0")/lib.sh"
guest_run guest_pci.sh --pci
finish
