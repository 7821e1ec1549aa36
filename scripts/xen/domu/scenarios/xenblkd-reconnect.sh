# The same disk in a new domU (reconnect): a 16-page ring and indirect requests of up to 128
# segments; the first domU's data must still be there; then a verifying workload while dom0
# kills the daemon again. Stays up until dom0 shuts it down (xl shutdown).
. /xentest/domu/steps.sh
. /xentest/domu/disk.sh

run guest-facts 30 guest_facts
run xenstore 30 xs_ready
run blkfront-load 60 blkfront_load max_ring_page_order=4 max_indirect_segments=128
run disk-ready 120 wait_disk xvda
run disk-facts 30 disk_facts xvda 4 128
run manifest-load 60 manifest_load xvda
run verify-previous 300 verify xvda previous
run workload 600 workload xvda 2
run blockstat-workload 10 record_stat xvda workload
run manifest-save 60 manifest_save xvda
run verify-after-kills 300 verify xvda after-kills
run io-errors-none 30 no_io_errors
run facts 10 wl_facts
run stay-up 5 stay_up
