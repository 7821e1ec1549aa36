#!/bin/sh
# Installs the Debian packages the Xen-under-QEMU harness needs. Idempotent; needs root (or sudo).
# --no-install-recommends keeps out grub and qemu-system-xen.
set -eu
PKGS="qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils linux-image-amd64 busybox-static cpio gzip zstd binutils qemu-system-common qemu-utils"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then echo "xen harness packages: all installed"; exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
