# The same disk in a new domU (reconnect): a 16-page ring and indirect requests of up to 128
# segments; the first domU's data must still be there; a round of the verifying workload on
# the new ring. Stays up until dom0 shuts it down (xl shutdown).
. /xentest/domu/steps.sh
. /xentest/domu/disk.sh

run guest-ready 60 guest_ready
run disk-ready 180 disk_ready xvda 4 128 max_ring_page_order=4 max_indirect_segments=128
run verify-previous 300 verify_previous xvda
run workload 400 workload xvda 1
run after-workload 300 after_workload xvda after-workload
run io-errors-none 30 no_io_errors
run facts 10 wl_facts
run stay-up 5 stay_up
