# Diagnostic: qemu-storage-daemon and qemu-img in dom0 (the qcow2 disk of the real-xen
# scenario) without xenblkd: both run; a qcow2 image exported over NBD on a unix socket takes
# 16 MiB of random data and gives it back (qemu-img as the NBD client), with O_DIRECT and Linux
# AIO on the image file and without (dom0's root file system is a tmpfs; Linux 6.1's tmpfs has no
# O_DIRECT); how long a storage daemon takes to start; `qemu-img check` after each.
. /xentest/dom0/steps.sh
. /xentest/dom0/xenblkd.sh
. /xentest/dom0/qcow2.sh

QSD_SOCK=/run/xentest/qsd.sock

# qsd_roundtrip DIRECT AIO: serve a fresh image (cache.direct=DIRECT, aio=AIO), write and
# compare through NBD, stop the daemon, check the image
qsd_roundtrip() {
  qcow2_prepare > /dev/null || return 1
  rm -f "$QSD_SOCK" /run/xentest/qsd.pid
  log=/var/log/xentest/qsd-$1-$2.log
  t0=$(xt_now)
  setsid qemu-storage-daemon \
    --blockdev "driver=file,node-name=file0,filename=$QCOW2_IMAGE,cache.direct=$1,aio=$2" \
    --blockdev driver=qcow2,node-name=disk0,file=file0,discard=unmap \
    --nbd-server "addr.type=unix,addr.path=$QSD_SOCK" \
    --export type=nbd,id=exp0,node-name=disk0,name=disk0,writable=on \
    --pidfile /run/xentest/qsd.pid > "$log" 2>&1 < /dev/null &
  pid=$!
  xt_wait_for 60 "the NBD socket" sh -c "test -S $QSD_SOCK || ! kill -0 $pid 2> /dev/null"
  if ! kill -0 $pid 2> /dev/null; then
    xt_info "qsd-direct-$1-aio-$2" "exits at start: $(tail -n 1 "$log")"
    echo "qemu-storage-daemon (cache.direct=$1, aio=$2) exited at start: $(tail -n 1 "$log")"
    return 0
  fi
  started=$(xt_since "$t0")
  head -c 16777216 /dev/urandom > /run/xentest/pattern
  t1=$(xt_now)
  qemu-img convert -n -f raw -O raw /run/xentest/pattern "nbd+unix:///disk0?socket=$QSD_SOCK" || { echo "writing through NBD failed"; return 1; }
  wrote=$(xt_since "$t1")
  qemu-img compare -f raw -F raw /run/xentest/pattern "nbd+unix:///disk0?socket=$QSD_SOCK" || { echo "what NBD read back differs"; return 1; }
  kill -TERM $pid
  xt_wait_for 30 "qemu-storage-daemon to exit" sh -c "! kill -0 $pid 2> /dev/null" || return 1
  qemu-img check "$QCOW2_IMAGE" || { echo "qemu-img check found errors"; return 1; }
  rm -f /run/xentest/pattern
  xt_info "qsd-direct-$1-aio-$2" "serves: socket after $started s; 16 MiB written through NBD in $wrote s, read back equal; qemu-img check clean"
  echo "cache.direct=$1 aio=$2: socket after $started s, 16 MiB written in $wrote s"
}

boot_steps
run qcow2-prepare 60 qcow2_prepare
run direct-native 120 qsd_roundtrip on native
run direct-threads 120 qsd_roundtrip on threads
run buffered-threads 120 qsd_roundtrip off threads
