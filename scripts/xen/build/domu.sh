#!/bin/sh
# domU initramfs: busybox, xen-blkfront.ko, /init and the domU scenarios.
# usage: ROOT=<staging dir> OUT=<file> PROJECT=<repo> domu.sh
. "$(dirname "$0")/common.sh"
fresh_root
add_busybox
x="$PROJECT/scripts/xen"
mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/run" "$ROOT/tmp" "$ROOT/xentest/domu" "$ROOT/xentest/scenarios"
add_modules /xentest/modules.domu xen-blkfront
cp "$x/domu/init" "$ROOT/init"
cp "$x/guest/xentest.sh" "$ROOT/xentest/"
cp "$x/domu/steps.sh" "$ROOT/xentest/domu/"
cp "$x"/domu/scenarios/*.sh "$ROOT/xentest/scenarios/"
chmod 755 "$ROOT/init"
cd "$ROOT"
pack_root
