# Step functions for domU scenarios.

guest_facts() {
  xt_info domu-kernel "$(uname -r)"
  xt_info domu-guest-type "$(cat /sys/hypervisor/guest_type 2> /dev/null)"
  echo "guest type $(cat /sys/hypervisor/guest_type 2> /dev/null), kernel $(uname -r)"
  [ "$(cat /sys/hypervisor/guest_type)" = PV ] || { echo "not a PV guest"; return 1; }
}

# blkfront_load [PARAMS...]: insmod returns only once the disks connect, so don't wait for it
blkfront_load() {
  setsid insmod /lib/modules/xen-blkfront.ko "$@" > /run/xentest/insmod-blkfront.log 2>&1 < /dev/null &
  xt_wait_for 20 "xen-blkfront in /proc/modules" grep -q '^xen_blkfront ' /proc/modules || return 1
  ls /sys/bus/xen/devices
  for p in /sys/module/xen_blkfront/parameters/*; do echo "$(basename "$p")=$(cat "$p")"; done
}

stay_up() { touch /run/xentest/stay; }
