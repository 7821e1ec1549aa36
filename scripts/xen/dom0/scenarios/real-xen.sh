# Phase B: xenblkd is the block backend on a real Xen. Linux's xen-blkfront in PV domUs is its
# peer. domu1 (1-page ring) runs a verifying workload while the daemon is SIGKILLed and
# restarted twice (on the map and persistent data paths; the first kill at a random moment, the
# second as the guest starts a large write, so its requests wait in the ring across the kill);
# an unplug and replug with `xenblkd detach/attach`; domu1 powers off and domu2 connects to the
# same disk with a 16-page ring, indirect requests and persistent grants, finds its data and
# runs the workload while the daemon is killed twice more (as a large write starts: indirect
# requests waiting; restarted on the persistent path; then at a random moment, restarted on
# map); then a qcow2 image, made in dom0 with qemu-img, is plugged into domu2 as xvdb
# (`xenblkd attach --image qcow2:PATH`: served through a qemu-storage-daemon the daemon starts),
# the workload runs on it while the daemon is killed once more as a large write starts (the
# restarted daemon must adopt the same qemu-storage-daemon), the disk is unplugged (its storage
# daemon stops) and `qemu-img check` is clean; an `xl shutdown`. The guests verify at
# least 64 MiB of fresh data between them on the raw disk; the xenstore nodes are checked at
# each stage; any daemon log line at error level that the step does not expect
# (dom0/daemon-log-allow) fails it. dom0 checks the image files once, at the end: domu2 leaves
# domu1's regions alone.
. /xentest/dom0/steps.sh
. /xentest/dom0/xenblkd.sh
. /xentest/dom0/qcow2.sh

boot_steps
run prepare 60 prepare 256
run qcow2-prepare 60 qcow2_prepare
run xenblkd-start 260 xenblkd_start auto
run domu1-create 150 domu_create domu1 xenblkd-workload xenblkd
run domu1-connected 240 vbd_connected domu1 0
run kill-1 400 xenblkd_kill_restart domu1 map
run kill-2 400 xenblkd_kill_restart domu1 persistent mid-write
run domu1-stop-workload 480 stop_workload domu1
run detach 200 xenblkd_detach domu1 xvda
run attach 200 xenblkd_attach domu1 xvda
run domu1-done 300 guest_done domu1 300
run domu1-gone 150 domu_gone domu1
run domu2-create 150 domu_create domu2 xenblkd-reconnect xenblkd-big
run domu2-connected 240 vbd_connected domu2 4
run kill-3 400 xenblkd_kill_restart domu2 persistent mid-write
run kill-4 400 xenblkd_kill_restart domu2 map
run domu2-stop-workload 480 stop_workload domu2
run qcow2-attach 480 qcow2_attach domu2
run kill-5 400 qcow2_kill domu2 auto
run qcow2-stop-workload 480 stop_workload domu2 domu2-qcow2
run qcow2-detach 480 qcow2_detach domu2
run domu2-done 400 guest_done domu2 380
run domu2-shutdown 150 domu_shutdown domu2
run domu2-image-check 180 image_check domu2
run qcow2-image-check 120 qcow2_image_check
run fresh-data-verified 10 fresh_verified 64 domu1 domu2
run xenblkd-stop 90 xenblkd_stop
always daemon-facts 60 daemon_facts
always logs 30 show_logs
always dmesg-clean 30 dmesg_clean
always sessions 60 sessions_dump
