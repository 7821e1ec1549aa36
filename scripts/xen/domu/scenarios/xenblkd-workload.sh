# The first domU on a disk served by xenblkd (one-page ring, blkfront's default indirect and
# persistent grants): a verifying workload while dom0 kills and restarts the daemon, then a
# full check, an unplug and a replug (xenblkd detach/attach) with the data checked again.
. /xentest/domu/steps.sh
. /xentest/domu/disk.sh

run guest-facts 30 guest_facts
run xenstore 30 xs_ready
run blkfront-load 60 blkfront_load
run disk-ready 120 wait_disk xvda
run disk-facts 30 disk_facts xvda 0
run workload 900 workload xvda 3
run blockstat-workload 10 record_stat xvda workload
run manifest-save 60 manifest_save xvda
run verify-after-kills 300 verify xvda after-kills
run ready-for-detach 10 say wait-detach
run detach-seen 120 wait_gone xvda
run ready-for-attach 10 say wait-attach
run attach-seen 120 wait_disk xvda
run verify-after-attach 300 verify xvda after-attach
run io-errors-none 30 no_io_errors
run facts 10 wl_facts
