# Disk steps for domU scenarios: a verifying workload on a blkfront disk served by xenblkd.
# Every write is fresh random data whose sha256 is kept in a manifest (one entry per 8 MiB slot);
# reads go around the page cache (O_DIRECT) so they reach the backend. A scenario may set SIZES
# (bytes per write of a round, at most SLOT_BYTES) and SLOT_FIRST (where its first round writes)
# after sourcing this file. dom0 talks to the
# workload through this domain's xenstore keys data/xentest/* (dom0 writes `stop`, `phase`;
# the domU writes `round`, `status`).
WL=/run/xentest/wl
# what the workload's facts are called (own_wl gives a second disk its own)
WL_FACTS=domu
SLOT_BYTES=8388608
# 31 slots: 248 MiB, below the manifest's home on the disk (a 256 MiB image): the last MiB
SLOTS=31
MANIFEST_OFF=267386880
SIZES="4096 45056 1048576 8388608"
SLOT_FIRST=0
MODES="direct sync fsync"

xs_get() { xenstore-read "data/xentest/$1" 2> /dev/null; }
xs_put() { xenstore-write "data/xentest/$1" "$2"; }

# NOW = centiseconds since boot, from /proc/uptime without forking (forks are dear in a PV
# guest under TCG)
now_cs() {
  read -r _up _ < /proc/uptime
  NOW=$((${_up%.*} * 100 + 1${_up#*.} - 100))
}

# guest_ready: a PV guest that can read and write its xenstore directory
guest_ready() {
  guest_facts || return 1
  xs_ready
}

xs_ready() {
  domid=$(xenstore-read domid) || { echo "xenstore-read domid failed"; return 1; }
  echo "this is domain $domid; data/xentest is ours"
  xs_put status booted || { echo "cannot write data/xentest"; return 1; }
  xt_info domu-domid "$domid"
}

dev_of() { echo "/dev/$1"; }

# wait_disk NAME: the block device appears and is readable
wait_disk() {
  xt_wait_for "${2:-90}" "/sys/block/$1" test -e "/sys/block/$1" || return 1
  xt_wait_for 20 "/dev/$1" test -b "/dev/$1" || return 1
  sectors=$(cat "/sys/block/$1/size")
  echo "$1: $sectors sectors"
  [ "$sectors" -gt 0 ] || { echo "$1 has no sectors"; return 1; }
  dd if="/dev/$1" of=/dev/null bs=4096 count=1 iflag=direct 2> /dev/null || { echo "reading $1 failed"; return 1; }
}

# disk_ready NAME ORDER [SEGMENTS] [BLKFRONT PARAMS...]: load blkfront, wait for the disk,
# check the ring and the indirect segments blkfront negotiated
disk_ready() {
  name=$1 order=$2 segs=$3
  shift 3
  blkfront_load "$@" || return 1
  wait_disk "$name" 120 || return 1
  disk_facts "$name" "$order" "$segs"
}

# after_workload NAME LABEL: the block layer's counters, the manifest saved on the disk, every
# region checked (fact domu-verified-LABEL)
after_workload() {
  record_stat "$1" workload || return 1
  manifest_save "$1" || return 1
  verify "$1" "$2"
}

# wait_gone NAME: the backend unplugged the disk and blkfront removed it
wait_gone() {
  xt_wait_for "${2:-90}" "/sys/block/$1 to go" sh -c "! test -e /sys/block/$1" || return 1
  echo "$1 is gone: $(ls /sys/block)"
  dmesg | grep -i blkfront | tail -n 3
}

# disk_facts NAME ORDER: the frontend's xenstore keys and the queue limits blkfront set up
disk_facts() {
  fe=$(xenstore-list device/vbd | head -n 1)
  xenstore-ls "device/vbd/$fe"
  order=$(xenstore-read "device/vbd/$fe/ring-page-order" 2> /dev/null || echo 0)
  segs=$(cat "/sys/block/$1/queue/max_segments")
  hw=$(cat "/sys/block/$1/queue/max_hw_sectors_kb")
  persistent=$(xenstore-read "device/vbd/$fe/feature-persistent" 2> /dev/null || echo 0)
  xt_info "domu-ring-page-order" "$order"
  xt_info "domu-max-segments" "$segs"
  xt_info "domu-max-hw-sectors-kb" "$hw"
  xt_info "domu-feature-persistent" "$persistent"
  xt_info "domu-discard-max-bytes" "$(cat "/sys/block/$1/queue/discard_max_bytes")"
  echo "ring-page-order $order, max_segments $segs, max_hw_sectors_kb $hw, persistent $persistent"
  [ "$order" = "$2" ] || { echo "ring-page-order is $order, expected $2"; return 1; }
  [ -z "$3" ] || [ "$segs" -ge "$3" ] || { echo "max_segments $segs < $3: no indirect requests"; return 1; }
}

# put_pattern DEV SLOT SIZE MODE ROUND: random data into SLOT (at a sector offset inside it),
# read back with O_DIRECT, compare; the manifest entry of SLOT is replaced
put_pattern() {
  dev=$1 slot=$2 size=$3 mode=$4
  off=$((slot * SLOT_BYTES))
  [ "$size" -lt "$SLOT_BYTES" ] && off=$((off + (RANDOM % 8) * 512))
  dd if=/dev/urandom of="$WL/pat" bs="$size" count=1 iflag=fullblock 2> /dev/null || return 1
  want=$(sha256sum < "$WL/pat" | cut -d' ' -f1)
  [ "$size" -ge 1048576 ] && [ "$mode" = direct ] && kill_point "$size" "$mode"
  now_cs; t0=$NOW
  case "$mode" in
  direct) dd if="$WL/pat" of="$dev" bs="$size" count=1 seek="$off" oflag=direct,seek_bytes conv=notrunc 2> "$WL/dd.err" ;;
  sync) dd if="$WL/pat" of="$dev" bs="$size" count=1 seek="$off" oflag=seek_bytes conv=notrunc 2> "$WL/dd.err" && sync ;;
  fsync) dd if="$WL/pat" of="$dev" bs="$size" count=1 seek="$off" oflag=seek_bytes conv=notrunc,fsync 2> "$WL/dd.err" ;;
  esac || { echo "write of $size bytes at $off ($mode) failed: $(tail -n 1 "$WL/dd.err")"; return 1; }
  got=$(dd if="$dev" bs="$size" count=1 skip="$off" iflag=direct,skip_bytes 2> "$WL/dd.err" | sha256sum | cut -d' ' -f1)
  now_cs; t1=$NOW
  [ -n "$got" ] || { echo "read back at $off failed"; return 1; }
  [ "$got" = "$want" ] || { echo "MISMATCH slot $slot: $size bytes at $off ($mode) read back $got, wrote $want"; return 1; }
  echo "$off $size $want" > "$WL/slot.$slot"
  note_op $((t1 - t0)) "$mode $size"
  echo $(($(cat "$WL/bytes") + size)) > "$WL/bytes"
  # fresh data: each write is new random data, verified once here (re-reads count in bytes only)
  echo $(($(cat "$WL/fresh") + size)) > "$WL/fresh"
}

# kill_point SIZE MODE: when dom0 armed a kill (data/xentest/kill-armed=1), say which write
# comes next (data/xentest/io) and hold it until dom0 has frozen the daemon (frozen=1, 10 s at
# most): its requests then wait in the ring across the daemon's SIGKILL. Only O_DIRECT writes
# of 1 MiB or more: the kernel submits all their requests at once, whereas writeback of a
# buffered write is throttled to a request or two in flight when the disk stops answering
# (seen on the 16-page ring: 2 requests waiting for a 4 MiB fsync write).
kill_point() {
  [ "$(xs_get kill-armed)" = 1 ] || return 0
  xs_put kill-armed 0
  xs_put io "write $1 $2"
  i=0
  while [ "$(xs_get frozen)" != 1 ] && [ $i -lt 40 ]; do usleep 250000; i=$((i + 1)); done
  xs_put io -
  xt_log "kill point: $2 write of $1 bytes $([ $i -lt 40 ] && echo "while dom0 froze the daemon" || echo "(dom0 did not freeze the daemon in 10 s)")"
}

# the longest write+read-back of the workload (cs), with what it was
note_op() {
  [ "$1" -gt "$(cat "$WL/op-max-cs")" ] || return 0
  echo "$1" > "$WL/op-max-cs"
  echo "$2" > "$WL/op-max-what"
}

# discard_slot DEV SLOT: BLKDISCARD the slot; it holds nothing the manifest promises after
discard_slot() {
  off=$(($2 * SLOT_BYTES))
  blkdiscard -o "$off" -l "$SLOT_BYTES" "$1" || { echo "blkdiscard of slot $2 failed"; return 1; }
  rm -f "$WL/slot.$2"
  z=$(dd if="$1" bs=65536 count=1 skip="$off" iflag=direct,skip_bytes 2> /dev/null | tr -d '\0' | wc -c)
  [ "$z" -eq 0 ] && echo 1 > "$WL/discard-zeroes" || echo 0 > "$WL/discard-zeroes"
  echo $(($(cat "$WL/discards") + 1)) > "$WL/discards"
}

# stall_probe DEV: 4 KiB O_DIRECT reads back to back until $WL/stop-probe; the longest one
# (in centiseconds) is the guest's longest I/O stall
stall_probe() {
  max=0 n=0
  while [ ! -e "$WL/stop-probe" ]; do
    now_cs; t0=$NOW
    dd if="$1" of=/dev/null bs=4096 count=1 skip=$((RANDOM % 60000)) iflag=direct 2> /dev/null \
      || echo "probe read failed at $t0" >> "$WL/errors"
    now_cs
    n=$((n + 1))
    if [ $((NOW - t0)) -gt "$max" ]; then max=$((NOW - t0)); echo "$max" > "$WL/stall-max-cs"; fi
    echo "$n" > "$WL/probes"
    usleep 100000
  done
}

wl_init() {
  mkdir -p "$WL"
  for f in bytes fresh op-max-cs stall-max-cs probes discards rounds; do [ -f "$WL/$f" ] || echo 0 > "$WL/$f"; done
  [ -f "$WL/discard-zeroes" ] || echo - > "$WL/discard-zeroes"
  [ -f "$WL/op-max-what" ] || echo - > "$WL/op-max-what"
}

# workload NAME MIN_ROUNDS [until-stop [MIN_FRESH_BYTES]]: MIN_ROUNDS rounds of every size and
# write mode, or with until-stop as many more as it takes dom0 to write stop=1 and this guest to
# have verified MIN_FRESH_BYTES of fresh data; a stall probe reads alongside. The count of
# verified writes goes to data/xentest/ops after each (fresh bytes to data/xentest/fresh), so
# dom0 can time its daemon kills and see I/O resume.
workload() {
  dev=$(dev_of "$1") min=${2:-2} until=${3:-} min_fresh=${4:-0}
  wl_init
  rm -f "$WL/stop-probe" "$WL/errors"
  stall_probe "$dev" &
  probe=$!
  set -- $SIZES
  r=$(cat "$WL/rounds") start=$r rc=0 ops=0
  slot=$(((SLOT_FIRST + r * $#) % SLOTS))
  xs_put status workload
  while :; do
    i=0
    for size in $SIZES; do
      set -- $MODES
      shift $(((r + i) % 3))
      put_pattern "$dev" "$slot" "$size" "$1" || { rc=1; break 2; }
      ops=$((ops + 1))
      xs_put ops "$ops"
      xs_put fresh "$(cat "$WL/fresh")"
      slot=$(((slot + 1) % SLOTS))
      i=$((i + 1))
    done
    # discard the slot the next round writes first
    discard_slot "$dev" "$slot" || { rc=1; break; }
    r=$((r + 1))
    echo "$r" > "$WL/rounds"
    xs_put round "$r"
    xt_log "round $r: $(cat "$WL/fresh") fresh bytes verified, longest op $(cat "$WL/op-max-cs")0 ms, longest probe $(cat "$WL/stall-max-cs")0 ms"
    [ $((r - start)) -ge "$min" ] && { [ -z "$until" ] || { [ "$(xs_get stop)" = 1 ] && [ "$(cat "$WL/fresh")" -ge "$min_fresh" ]; }; } && break
  done
  touch "$WL/stop-probe"
  wait "$probe"
  xs_put status "workload-end"
  [ -s "$WL/errors" ] && { cat "$WL/errors"; echo "the stall probe saw read errors"; return 1; }
  wl_facts
  [ "$rc" -eq 0 ] || return 1
  echo "$((r - start)) rounds, $(cat "$WL/probes") probe reads"
}

wl_facts() {
  xt_info "$WL_FACTS-rounds" "$(cat "$WL/rounds")"
  xt_info "$WL_FACTS-bytes-verified" "$(cat "$WL/bytes")"
  xt_info "$WL_FACTS-fresh-bytes-verified" "$(cat "$WL/fresh")"
  xt_info "$WL_FACTS-longest-stall-ms" "$(($(cat "$WL/stall-max-cs") * 10))"
  xt_info "$WL_FACTS-longest-op-ms" "$(($(cat "$WL/op-max-cs") * 10)) $(cat "$WL/op-max-what")"
  xt_info "$WL_FACTS-discards" "$(cat "$WL/discards")"
  xt_info "$WL_FACTS-discard-zeroes" "$(cat "$WL/discard-zeroes")"
}

# manifest_save NAME: the manifest (offset size sha256 per slot) into the disk's last MiB,
# behind a header line "XENTEST-MANIFEST <entries> <sha256 of the entries>"
manifest_save() {
  dev=$(dev_of "$1")
  cat "$WL"/slot.* 2> /dev/null | sort -n > "$WL/manifest"
  n=$(wc -l < "$WL/manifest")
  sum=$(sha256sum < "$WL/manifest" | cut -d' ' -f1)
  { echo "XENTEST-MANIFEST $n $sum"; cat "$WL/manifest"; } > "$WL/manifest.block"
  dd if="$WL/manifest.block" of="$dev" bs=65536 count=1 seek=$((MANIFEST_OFF / 65536)) conv=sync,notrunc,fsync 2> /dev/null \
    || { echo "writing the manifest failed"; return 1; }
  xs_put manifest "$n $sum"
  echo "manifest: $n entries, sha256 $sum"
}

# manifest_load NAME: the manifest read back from the disk (checks its own checksum)
manifest_load() {
  dev=$(dev_of "$1")
  wl_init
  dd if="$dev" bs=65536 count=1 skip=$((MANIFEST_OFF / 65536)) iflag=direct 2> /dev/null | tr -d '\0' > "$WL/manifest.block"
  set -- $(head -n 1 "$WL/manifest.block")
  [ "$1" = XENTEST-MANIFEST ] || { echo "no manifest on the disk"; return 1; }
  tail -n +2 "$WL/manifest.block" | grep . > "$WL/manifest"
  [ "$(wc -l < "$WL/manifest")" = "$2" ] || { echo "manifest has $(wc -l < "$WL/manifest") entries, header says $2"; return 1; }
  [ "$(sha256sum < "$WL/manifest" | cut -d' ' -f1)" = "$3" ] || { echo "manifest checksum mismatch"; return 1; }
  rm -f "$WL"/slot.*
  while read -r off size sum; do echo "$off $size $sum" > "$WL/slot.$((off / SLOT_BYTES))"; done < "$WL/manifest"
  echo "manifest: $2 entries"
}

# verify NAME LABEL [EVERY]: manifest entries read back (O_DIRECT) with their checksums: every
# one, or every EVERY-th in offset order from the first (a sample across slots and sizes, for
# checks that a full pass elsewhere repeats)
verify() {
  dev=$(dev_of "$1") every=${3:-1}
  wl_init
  cat "$WL"/slot.* 2> /dev/null | sort -n > "$WL/manifest"
  i=0 n=0 bad=0 bytes=0
  while read -r off size sum; do
    i=$((i + 1))
    [ $(((i - 1) % every)) -eq 0 ] || continue
    got=$(dd if="$dev" bs="$size" count=1 skip="$off" iflag=direct,skip_bytes 2> /dev/null | sha256sum | cut -d' ' -f1)
    n=$((n + 1)) bytes=$((bytes + size))
    [ "$got" = "$sum" ] || { bad=$((bad + 1)); echo "MISMATCH $size bytes at $off: $got, expected $sum"; }
  done < "$WL/manifest"
  echo $(($(cat "$WL/bytes") + bytes)) > "$WL/bytes"
  what="$n regions"
  [ "$n" -eq "$i" ] || what="$n of $i regions"
  xt_info "$WL_FACTS-verified-$2" "$what, $bytes bytes"
  echo "$what ($bytes bytes) checked, $bad mismatches"
  [ "$n" -gt 0 ] || { echo "nothing to verify"; return 1; }
  [ "$bad" -eq 0 ]
}

# verify_previous NAME [EVERY]: the manifest a previous guest left on the disk, its regions checked
verify_previous() {
  manifest_load "$1" || return 1
  verify "$1" previous "${2:-1}"
}

# the guest's block layer counters: reads, writes, discards, flushes completed
disk_stat() {
  set -- $(cat "/sys/block/$1/stat")
  echo "reads=$1 read_sectors=$3 writes=$5 write_sectors=$7 discards=${12:-0} discard_sectors=${14:-0} flushes=${16:-0}"
}

record_stat() {
  s=$(disk_stat "$1")
  xt_info "$WL_FACTS-blockstat-$2" "$s"
  echo "$s"
}

# no I/O errors in the kernel log (blkfront and the block layer report them there)
no_io_errors() {
  bad=$(dmesg | grep -iE 'I/O error|blk_update_request|blkfront.*(error|fail)|Buffer I/O' | head -n 10)
  [ -z "$bad" ] || { echo "$bad"; echo "the kernel log shows I/O errors"; return 1; }
  echo "no I/O errors in the kernel log"
}

# say PHASE to dom0 through data/xentest/phase
say() { xs_put phase "$1"; }

# own_wl FUNC NAME [ARGS...]: FUNC NAME ARGS with NAME's own workload state ($WL-NAME) and
# facts (domu-NAME-*): a second disk of the guest, after the first one's workload
own_wl() {
  WL="$WL-$2" WL_FACTS="domu-$2"
  "$@"
}

# next_workload PHASE: the last workload is over; reset the keys dom0 judges a workload by
# (stop, ops, manifest) so the next one starts afresh, then tell dom0 PHASE
next_workload() {
  xs_put stop 0 && xs_put ops 0 && xs_put status idle || return 1
  xenstore-rm data/xentest/manifest 2> /dev/null
  say "$1"
}
