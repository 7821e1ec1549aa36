#!/bin/sh
# Installs the Debian packages the tests use as real, independent peers and references.
# Idempotent; needs root (or sudo) on Debian 12.
set -eu
# storage peers: a single-node Ceph (mon, osd, rbd CLI, librbd for the rbd driver), QEMU's block
# layer (qemu-storage-daemon, qemu-nbd, qemu-img, qemu-block-extra), nbdkit as a second NBD server
PKGS="xenstore-utils python3-pyxs xen-utils-4.17 fio chromium procps gcc libc6-dev libxen-dev busybox-static
  ceph-mon ceph-osd ceph-common librbd1 librados2 qemu-utils qemu-system-common qemu-block-extra nbdkit libnbd-bin"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
