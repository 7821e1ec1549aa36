# Phase B: xenblkd is the block backend on a real Xen. Linux's xen-blkfront in PV domUs is its
# peer, with a verifying workload while the daemon is SIGKILLed and restarted twice (on the map
# and persistent data paths), an unplug and replug with `xenblkd detach/attach`, a domU powering
# off and a new one connecting to the same disk (16-page ring, indirect requests) and finding
# its data, an `xl shutdown`, and the xenstore nodes checked at each stage.
. /xentest/dom0/steps.sh
. /xentest/dom0/xenblkd.sh

boot_steps
run prepare 60 prepare 256
run xenblkd-start 260 xenblkd_start auto
run domu1-create 150 domu_create domu1 xenblkd-workload xenblkd
run domu1-connected 240 vbd_connected domu1 0
run kill-1 400 xenblkd_kill_restart domu1 map
run kill-2 400 xenblkd_kill_restart domu1 persistent
run domu1-stop-workload 360 stop_workload domu1
run domu1-image-check 120 image_check domu1
run detach 200 xenblkd_detach domu1 xvda
run attach 200 xenblkd_attach domu1 xvda
run domu1-done 300 guest_done domu1 300
run domu1-gone 150 domu_gone domu1
run domu2-create 150 domu_create domu2 xenblkd-reconnect xenblkd-big
run domu2-connected 240 vbd_connected domu2 4
run domu2-done 600 guest_done domu2 580
run domu2-shutdown 150 domu_shutdown domu2
run domu2-image-check 120 image_check domu2
run xenblkd-stop 90 xenblkd_stop
always daemon-facts 60 daemon_facts
always logs 30 show_logs
always dmesg-clean 30 dmesg_clean
always sessions 60 sessions_dump
