# The first domU on a disk served by xenblkd (one-page ring, blkfront's default indirect and
# persistent grants): a verifying workload while dom0 kills and restarts the daemon, then a
# full check, an unplug and a replug (xenblkd detach/attach) with the data checked again.
# Writes of up to 8 MiB (64 requests of 128 KiB: twice what the ring holds); the workload goes
# on after dom0's stop until it verified 27 MiB of fresh data (3 rounds of 9 MiB). After the
# replug a third of the regions is read back: domu2 reads them all again.
. /xentest/domu/steps.sh
. /xentest/domu/disk.sh
SIZES="4096 45056 1048576 8388608"
SLOT_FIRST=0

run guest-ready 60 guest_ready
run disk-ready 180 disk_ready xvda 0 ''
run workload 900 workload xvda 2 until-stop 28311552
run after-workload 300 after_workload xvda after-kills
run ready-for-detach 10 say wait-detach
run detach-seen 120 wait_gone xvda
run ready-for-attach 10 say wait-attach
run attach-seen 120 wait_disk xvda
run verify-after-attach 300 verify xvda after-attach 3
run io-errors-none 30 no_io_errors
run facts 10 wl_facts
