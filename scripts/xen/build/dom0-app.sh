#!/bin/sh
# dom0 layer: the built project (dist, package.json), the probes, the scenario scripts, /init,
# and the domU initramfs. usage: ROOT=<dir> OUT=<file> PROJECT=<repo> DOMU_INITRD=<file> dom0-app.sh
. "$(dirname "$0")/common.sh"
fresh_root
x="$PROJECT/scripts/xen"
[ -f "$PROJECT/dist/cli/main.js" ] || { echo "no $PROJECT/dist: run npm run build" >&2; exit 1; }
mkdir -p "$ROOT/opt/xenblkd/scripts/xen" "$ROOT/xentest/dom0" "$ROOT/xentest/scenarios" \
  "$ROOT/xentest/domu" "$ROOT/boot"
cp -a "$PROJECT/dist" "$PROJECT/package.json" "$ROOT/opt/xenblkd/"
cp -a "$x/probe" "$ROOT/opt/xenblkd/scripts/xen/"
cp "$x/dom0/init" "$ROOT/init"
cp "$x/guest/xentest.sh" "$ROOT/xentest/"
cp "$x/dom0/steps.sh" "$x/dom0/xenblkd.sh" "$x/dom0/qcow2.sh" "$x/dom0/vbd-hook" "$x/dom0/daemon-log-allow" "$ROOT/xentest/dom0/"
cp "$x"/dom0/scenarios/*.sh "$ROOT/xentest/scenarios/"
cp "$x"/dom0/domu/*.cfg "$ROOT/xentest/domu/"
cp "$DOMU_INITRD" "$ROOT/boot/domu-initrd"
chmod 755 "$ROOT/init" "$ROOT/xentest/dom0/vbd-hook"
pack_root
