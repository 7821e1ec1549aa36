# Step functions for a qcow2 disk served through qemu-storage-daemon (sourced after
# xenblkd.sh). dom0 makes the image with qemu-img; `xenblkd attach --image qcow2:PATH` plugs it
# into a running guest as a second disk and the daemon starts a qemu-storage-daemon for it (an
# NBD export it talks to). Across a SIGKILL of xenblkd that storage daemon lives on and the
# restarted xenblkd adopts it: the same process (pid and start time) serves the disk before and
# after. Unplugging the disk stops it; `qemu-img check` is clean after.
QCOW2_IMAGE=$DISK_DIR/disk1.qcow2
QCOW2_VDEV=xvdb
QCOW2_MIB=256

# the pids of the qemu-storage-daemons whose command line names the qcow2 image
qsd_pids() {
  for f in $(grep -l qemu-storage-daemon /proc/[0-9]*/cmdline 2> /dev/null); do
    d=${f%/cmdline}
    { tr '\0' ' ' < "$f"; } 2> /dev/null | grep -q "^[^ ]*qemu-storage-daemon .*$QCOW2_IMAGE" && echo "${d#/proc/}"
  done
  return 0
}

# "PID STARTTIME": a process and when it started (clock ticks after boot): a pid reused by
# another process has another start time
qsd_identity() { echo "$1 $(cut -d' ' -f22 "/proc/$1/stat" 2> /dev/null)"; }

# the storage daemons' own logs (kept by xenblkd in its state folder), for a step that failed
qsd_logs() {
  find "$XB_STATE/qsd" -name '*.log' 2> /dev/null | while read -r f; do
    echo "== $f"
    tail -n 20 "$f"
  done
}

# qcow2_prepare: the QEMU tools run in dom0; a fresh qcow2 image of QCOW2_MIB
qcow2_prepare() {
  v=$(qemu-storage-daemon --version | head -n 1) || { echo "qemu-storage-daemon does not run in dom0"; return 1; }
  xt_info qemu-storage-daemon-version "$v"
  qemu-img --version | head -n 1 || { echo "qemu-img does not run in dom0"; return 1; }
  mkdir -p "$DISK_DIR"
  rm -f "$QCOW2_IMAGE"
  qemu-img create -f qcow2 "$QCOW2_IMAGE" "${QCOW2_MIB}M" || { echo "qemu-img create failed"; return 1; }
  qemu-img info "$QCOW2_IMAGE"
  echo "$v"
}

# qcow2_attach NAME: once NAME says wait-qcow2 (its first disk's workload is over), plug the
# image in as QCOW2_VDEV; one qemu-storage-daemon serves it; both ends connect
qcow2_attach() {
  domid=$(domid_of "$1")
  xt_wait_for 400 "$1 to be ready for its qcow2 disk" sh -c "[ \"\$(xenstore-read /local/domain/$domid/data/xentest/phase 2> /dev/null)\" = wait-qcow2 ]" || return 1
  [ -z "$(qsd_pids)" ] || { echo "a qemu-storage-daemon serves $QCOW2_IMAGE already: $(qsd_pids)"; return 1; }
  # the kills count the workload's verified writes from here
  echo 0 > "/run/xentest/ops-at-start.$1"
  t0=$(xt_now)
  xb attach --domid "$domid" --vdev "$QCOW2_VDEV" --image "qcow2:$QCOW2_IMAGE" --xenstore "$XS_SOCKET" --wait 120 \
    || { qsd_logs; echo "xenblkd attach --image qcow2:$QCOW2_IMAGE failed"; return 1; }
  xt_info qcow2-attach-seconds "$(xt_since "$t0")"
  pids=$(qsd_pids)
  [ "$(echo $pids | wc -w)" -eq 1 ] || { echo "expected one qemu-storage-daemon for $QCOW2_IMAGE, found '$(echo $pids)'"; return 1; }
  qsd_identity "$pids" > /run/xentest/qsd.identity
  cmd=$(tr '\0' ' ' < "/proc/$pids/cmdline")
  echo "qemu-storage-daemon pid $pids: $cmd"
  xt_info qcow2-storage-daemon "pid $pids: $(echo "$cmd" | cut -c1-500)"
  vbd_connected "$1" 4 "$QCOW2_VDEV" $((QCOW2_MIB << 11))
}

# qcow2_kill NAME DATA_PATH: xenblkd SIGKILLed as NAME starts a large write on the qcow2 disk
# and restarted; the storage daemon must be the same process after (adopted, not restarted)
qcow2_kill() {
  xenblkd_kill_restart "$1" "$2" mid-write "$QCOW2_VDEV" || return 1
  # read after the kill: the shell's functions share variables (the kill sets pid)
  read -r qpid qstarted < /run/xentest/qsd.identity
  now=$(qsd_pids)
  [ "$(echo $now)" = "$qpid" ] || { qsd_logs; echo "qemu-storage-daemon was pid $qpid before the kill, now '$(echo $now)': not adopted"; return 1; }
  [ "$(qsd_identity "$qpid")" = "$qpid $qstarted" ] || { echo "pid $qpid is another process now (start time $(qsd_identity "$qpid"), was $qstarted)"; return 1; }
  grep "\"pid\":$(xenblkd_pid)," "$XB_LOG" | grep "adopted, pid $qpid" || { echo "the restarted xenblkd did not log adopting pid $qpid"; return 1; }
  xt_info qcow2-storage-daemon-adopted "pid $qpid (started at tick $qstarted) served the disk before and after the kill"
  echo "the restarted xenblkd adopted qemu-storage-daemon pid $qpid"
}

# qcow2_detach NAME: once NAME's workload on the qcow2 disk is checked (wait-qcow2-detach),
# `xenblkd detach`; the nodes go and the storage daemon stops
qcow2_detach() {
  domid=$(domid_of "$1") devid=$(devid_of "$QCOW2_VDEV")
  read -r qpid qstarted < /run/xentest/qsd.identity
  xt_wait_for 400 "$1 to be done with its qcow2 disk" sh -c "[ \"\$(xenstore-read /local/domain/$domid/data/xentest/phase 2> /dev/null)\" = wait-qcow2-detach ]" || return 1
  t0=$(xt_now)
  xb detach --domid "$domid" --vdev "$QCOW2_VDEV" --xenstore "$XS_SOCKET" --timeout 60 || { echo "xenblkd detach failed"; return 1; }
  took=$(xt_since "$t0")
  for d in "/local/domain/0/backend/vbd/$domid/$devid" "/local/domain/$domid/device/vbd/$devid"; do
    ! xenstore-exists "$d" || { echo "$d is still there"; return 1; }
  done
  xt_wait_for 60 "qemu-storage-daemon pid $qpid to stop" sh -c "[ \"\$(cut -d' ' -f22 /proc/$qpid/stat 2> /dev/null)\" != $qstarted ]" \
    || { qsd_logs; return 1; }
  [ -z "$(qsd_pids)" ] || { echo "a qemu-storage-daemon still serves $QCOW2_IMAGE: $(qsd_pids)"; return 1; }
  xt_info qcow2-detach-seconds "$took"
  echo "the disk is unplugged and its qemu-storage-daemon (pid $qpid) stopped"
}

# qcow2_image_check: `qemu-img check` finds no error, and every region of the manifest the
# guest left on the qcow2 disk holds what it wrote (checked on a raw copy of the image)
qcow2_image_check() {
  qemu-img check -f qcow2 "$QCOW2_IMAGE" > "$XT_RUNDIR/qcow2-check" 2>&1
  rc=$?
  cat "$XT_RUNDIR/qcow2-check"
  [ $rc -eq 0 ] || { echo "qemu-img check exited with $rc"; return 1; }
  grep -q 'No errors were found' "$XT_RUNDIR/qcow2-check" || { echo "qemu-img check did not say 'No errors were found'"; return 1; }
  xt_info qcow2-check "$(grep -E 'allocated|No errors' "$XT_RUNDIR/qcow2-check" | tr '\n' ' ')"
  raw=$DISK_DIR/disk1.raw
  qemu-img convert -f qcow2 -O raw "$QCOW2_IMAGE" "$raw" || { echo "qemu-img convert failed"; return 1; }
  XB_IMAGE=$raw
  image_check qcow2
  rc=$?
  rm -f "$raw"
  return $rc
}
