# Phase A: Xen + dom0 + Node.js + koffi + raw xenstore + PV domUs whose vbd a placeholder
# backend takes to InitWait, until blkfront is Initialised (one-page ring, then blkfront asked
# for a 16-page ring); each domU is destroyed after.
. /xentest/dom0/steps.sh

boot_steps
run node-runs 60 node_runs
run cli-version 60 cli_version
run ffi-probe 60 ffi_probe
run xenstore-raw 60 xenstore_raw
run vbd-probe-start 60 vbd_probe_start 64
run domu-create 120 domu_create domu1 phase-a
run blkfront-initialised 150 blkfront_initialised domu1 0
run domu-scenario 120 guest_done domu1
run domu-destroy 90 domu_destroy domu1
run domu-create-order4 120 domu_create domu2 phase-a-order4
run blkfront-initialised-order4 150 blkfront_initialised domu2 4
run domu-scenario-order4 120 guest_done domu2
run domu-destroy-order4 90 domu_destroy domu2
run vbd-probe-stop 30 vbd_probe_stop
always logs 30 show_logs
always dmesg-clean 30 dmesg_clean
