# The same disk in a new domU (reconnect): a 16-page ring, indirect requests of up to 128
# segments and persistent grants; the first domU's data must still be there (a third of its
# regions read back at once, all of them after the workload); the verifying workload runs while
# dom0 kills and restarts the daemon twice, until dom0 says stop and this guest verified 37 MiB
# of fresh data (3 rounds of 12.5 MiB; writes of up to 8 MiB: 16 indirect requests of 512 KiB).
# It writes slots the first domU left alone, so the final manifest holds both guests' data.
# Then a second disk, xvdb: a qcow2 image dom0 plugs in (`xenblkd attach --image qcow2:PATH`,
# served through qemu-storage-daemon); the workload on it (its own state and facts, at least
# one round: 12.5 MiB of fresh data) while dom0 kills the daemon once as a large write starts,
# every region checked, then dom0 unplugs it. Stays up until dom0 shuts it down (xl shutdown).
. /xentest/domu/steps.sh
. /xentest/domu/disk.sh
SIZES="4096 524288 4194304 8388608"
SLOT_FIRST=16

run guest-ready 60 guest_ready
run disk-ready 180 disk_ready xvda 4 128 max_ring_page_order=4 max_indirect_segments=128
run verify-previous 300 verify_previous xvda 3
run workload 900 workload xvda 1 until-stop 38797312
run after-workload 300 after_workload xvda after-kills
run io-errors-none 30 no_io_errors
run facts 10 wl_facts
run qcow2-ready-for-attach 10 next_workload wait-qcow2
run qcow2-disk 120 wait_disk xvdb 120
run qcow2-workload 600 own_wl workload xvdb 1 until-stop 13111296
run qcow2-after-workload 300 own_wl after_workload xvdb qcow2
run qcow2-ready-for-detach 10 say wait-qcow2-detach
run qcow2-gone 120 wait_gone xvdb
run qcow2-io-errors-none 30 no_io_errors
run stay-up 5 stay_up
