#!/bin/sh
# dom0 base layer: busybox, Xen's tools and libraries, kernel modules, Node.js, the domU kernel,
# qemu-storage-daemon and qemu-img (qcow2 disks; Debian's binaries are stripped already).
# usage: ROOT=<staging dir> OUT=<file> dom0-base.sh
. "$(dirname "$0")/common.sh"
fresh_root
add_busybox
cd "$ROOT"
mkdir -p proc sys dev tmp run root etc var/lib/xen/dump var/lib/xenstored var/log/xen/console boot
ln -s ../run var/run
ln -s ../run/lock var/lock
chmod 1777 tmp

add_with_libs $XEN_BIN/xl $XEN_BIN/xenstored $XEN_BIN/xenconsoled $XEN_BIN/xenconsole \
  $XEN_BIN/xen-init-dom0 $XEN_BIN/libxl-save-helper /usr/bin/xenstore*
# xl aborts without libgcc_s (pthread_cancel); the FFI probe and xenblkd dlopen these
add_with_libs /lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libxengnttab.so.1 \
  /lib/x86_64-linux-gnu/libxenevtchn.so.1 /lib/x86_64-linux-gnu/libxentoolcore.so.1 \
  /lib/x86_64-linux-gnu/libxentoollog.so.1
# qcow2 and the other formats are built into both (no /usr/lib/x86_64-linux-gnu/qemu modules)
add_with_libs /usr/bin/qemu-storage-daemon /usr/bin/qemu-img
for x in xl xenstored xenconsoled xen-init-dom0; do ln -sf $XEN_BIN/$x usr/sbin/$x; done
cp -a /etc/xen etc/

# Node.js, stripped of debug info (the binary shrinks by about 12 MB)
add_with_libs "$(readlink -f "$(command -v node)")"
nodebin=$(readlink -f "$(command -v node)")
if command -v strip > /dev/null; then strip -o usr/bin/node.stripped ".$nodebin" && mv usr/bin/node.stripped ".$nodebin"; fi
[ "$nodebin" = /usr/bin/node ] || ln -sf "$nodebin" usr/bin/node

add_modules /xentest/modules.dom0 xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs
cp "/boot/vmlinuz-$KVER" boot/vmlinuz
printf 'root:x:0:0:root:/root:/bin/sh\n' > etc/passwd
printf 'root:x:0:\n' > etc/group
printf '127.0.0.1 localhost\n' > etc/hosts
pack_root
