#!/bin/sh
# domU initramfs: busybox, xen-blkfront.ko, the xenstore client tools (dom0 and the domU talk
# through the domU's data/xentest keys), /init and the domU scenarios.
# usage: ROOT=<staging dir> OUT=<file> PROJECT=<repo> domu.sh
. "$(dirname "$0")/common.sh"
fresh_root
add_busybox
x="$PROJECT/scripts/xen"
mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/run" "$ROOT/tmp" "$ROOT/xentest/domu" "$ROOT/xentest/scenarios"
add_modules /xentest/modules.domu xen-blkfront
# one multi-call binary (the name says what it does) and libxenstore, which uses /dev/xen/xenbus
add_with_libs /usr/bin/xenstore
for t in read write exists list ls rm; do ln -s xenstore "$ROOT/usr/bin/xenstore-$t"; done
# the kernel runs /sbin/poweroff when the toolstack asks for a shutdown (xl shutdown)
ln -s ../bin/busybox "$ROOT/sbin/poweroff"
cp "$x/domu/init" "$ROOT/init"
cp "$x/guest/xentest.sh" "$ROOT/xentest/"
cp "$x/domu/steps.sh" "$x/domu/disk.sh" "$ROOT/xentest/domu/"
cp "$x"/domu/scenarios/*.sh "$ROOT/xentest/scenarios/"
chmod 755 "$ROOT/init"
cd "$ROOT"
pack_root
