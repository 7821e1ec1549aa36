# Step functions for scenarios that run the real daemon, xenblkd, in dom0 (sourced after
# steps.sh). The daemon serves backend/vbd over the real xenstored, /dev/xen/gntdev and
# /dev/xen/evtchn; its JSON log goes to $XB_LOG, one file across every start.
XB_STATE=/var/lib/xenblkd
XB_LOG=/var/log/xentest/xenblkd.log
XB_HTTP=127.0.0.1:8455
XB_IMAGE=$DISK_DIR/disk0.img
XB_SESSIONS=/var/lib/xenblkd-sessions
XB_METRICS=/var/log/xentest/metrics
# the domU workload keeps its manifest in the image's last MiB (scripts/xen/domu/disk.sh)
MANIFEST_OFF=267386880
# daemon log lines at error level that a step expects: "STEP<TAB>ERE<TAB>reason" per line
XB_LOG_ALLOW=${XB_LOG_ALLOW:-/xentest/dom0/daemon-log-allow}
# strict: an error line no step expects fails that step; survey: only reports it
XB_LOG_CHECK=${XB_LOG_CHECK:-strict}

# The bundled CLI when the build made one (one file to load: a start in dom0 under TCG takes
# about a third of the unbundled one's), else the CLI's own entry point.
XB_MAIN=dist/xenblkd.js
[ -f "$XENBLKD_DIR/$XB_MAIN" ] || XB_MAIN=dist/cli/main.js

xb() { (cd "$XENBLKD_DIR" && node "$XB_MAIN" "$@"); }
counter() { cat "/run/xentest/$1" 2> /dev/null || echo 0; }
bump() { echo $(($(counter "$1") + 1)) > "/run/xentest/$1"; counter "$1"; }
xs_guest() { xenstore-read "/local/domain/$(domid_of "$1")/data/xentest/$2" 2> /dev/null; }
# devid_of VDEV: the xenstore device id of a Xen disk name (xvda 51712, xvdb 51728, ...)
devid_of() {
  i=$(echo abcdefghijklmnop | sed "s/${1#xvd}.*//" | wc -c)
  echo $((202 * 256 + (i - 1) * 16))
}

# After every step (guest/xentest.sh): the daemon's log lines at error level or above (pino
# level >= 50) written since the previous check. Each must be allowed for this step by
# $XB_LOG_ALLOW, else the step fails. A line the daemon writes just after a step ends is
# checked with the next step; the last step (daemon-facts) sees the rest.
xt_after_step() { daemon_log_check "$1"; }

# daemon_log_check STEP
daemon_log_check() {
  [ -f "$XB_LOG" ] || return 0
  mark="$XT_RUNDIR/xenblkd-log-checked"
  from=$(cat "$mark" 2> /dev/null || echo 0)
  to=$(wc -l < "$XB_LOG")
  echo "$to" > "$mark"
  [ "$to" -gt "$from" ] || return 0
  sed -n "$((from + 1)),${to}p" "$XB_LOG" | grep -E '"level":[5-9][0-9]' > "$XT_RUNDIR/log-errors"
  unexpected=0
  while IFS= read -r line; do
    why=$(log_allowed "$1" "$line")
    if [ -n "$why" ]; then
      echo "$((1 + $(cat "$XT_RUNDIR/xenblkd-log-allowed" 2> /dev/null || echo 0)))" > "$XT_RUNDIR/xenblkd-log-allowed"
      echo "expected daemon error in $1 ($why): $(echo "$line" | cut -c1-300)"
    else
      unexpected=$((unexpected + 1))
      echo "UNEXPECTED daemon error in $1: $(echo "$line" | cut -c1-300)"
    fi
  done < "$XT_RUNDIR/log-errors"
  [ "$unexpected" -eq 0 ] && return 0
  echo "$((unexpected + $(cat "$XT_RUNDIR/xenblkd-log-unexpected" 2> /dev/null || echo 0)))" > "$XT_RUNDIR/xenblkd-log-unexpected"
  [ "$XB_LOG_CHECK" = survey ] && { echo "survey mode: $unexpected unexpected daemon errors in $1 not failed"; return 0; }
  echo "the daemon logged $unexpected error lines step $1 does not expect ($XB_LOG_ALLOW)"
  return 1
}

# log_allowed STEP LINE: the reason $XB_LOG_ALLOW gives for LINE in STEP, or nothing
log_allowed() {
  [ -f "$XB_LOG_ALLOW" ] || return 0
  tab=$(printf '\t')
  while IFS="$tab" read -r step re reason; do
    case "$step" in '' | '#'*) continue ;; esac
    [ "$step" = "$1" ] || continue
    if printf '%s\n' "$2" | grep -qE -- "$re"; then
      echo "$reason"
      return 0
    fi
  done < "$XB_LOG_ALLOW"
}

# prepare IMAGE_MIB: Node's version, a sparse image, session recording if the daemon has it
prepare() {
  node_version || return 1
  make_disk "$1" || return 1
  record_hook
}

# node --version only (a full Node start costs seconds in dom0 under TCG)
node_version() {
  v=$(node --version) || return 1
  xt_info node-version "$v"
  echo "node $v"
}

make_disk() {
  mkdir -p "$DISK_DIR"
  rm -f "$XB_IMAGE"
  dd if=/dev/zero of="$XB_IMAGE" bs=1M count=0 seek="$1" 2> /dev/null || return 1
  ls -l "$XB_IMAGE"
  xt_info image-bytes "$(stat -c %s "$XB_IMAGE")"
}

# Session recording (xenblkd run --record FILE) when this build of the daemon has it.
record_hook() {
  xt_info xenblkd-entry "$XB_MAIN"
  if grep -q -- '--record' "$XENBLKD_DIR/dist/cli/commands/run.js"; then
    touch /run/xentest/record
    xt_info session-recording "on ($XB_SESSIONS)"
  else
    xt_info session-recording "off: this xenblkd has no 'run --record'"
  fi
  return 0
}

# pid of the daemon that logged the last 'serving' line
xenblkd_pid() {
  grep 'serving backend/' "$XB_LOG" | tail -n 1 | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'
}

# xenblkd_start [DATA_PATH]: start the daemon, wait until it serves
xenblkd_start() {
  dp=${1:-auto}
  ip link set lo up 2> /dev/null # the dashboard and /metrics listen on loopback
  n=$(bump xenblkd-starts)
  set -- run --xenstore "$XS_SOCKET" --state-dir "$XB_STATE" --log-format json --log-level "${XB_LOG_LEVEL:-info}" \
    --data-path "$dp" --http "$XB_HTTP"
  if [ -f /run/xentest/record ]; then
    mkdir -p "$XB_SESSIONS"
    set -- "$@" --record "$XB_SESSIONS/real-xen-$n.jsonl"
  fi
  echo "{\"xentest\":\"start $n\",\"argv\":\"$*\",\"uptime\":$(xt_now),\"time\":$(date +%s)000}" >> "$XB_LOG"
  xt_relay xenblkd "$XB_LOG"
  t0=$(xt_now)
  # shellcheck disable=SC2086 # XB_NODE_FLAGS: node options for diagnostics (--cpu-prof)
  cd "$XENBLKD_DIR" && setsid node $XB_NODE_FLAGS "$XB_MAIN" "$@" >> "$XB_LOG" 2>&1 < /dev/null &
  launched=$!
  xt_wait_for "${XB_START_WAIT:-240}" "xenblkd start $n to serve" sh -c "[ \$(grep -c 'serving backend/' $XB_LOG) -ge $n ] || ! kill -0 $launched 2> /dev/null"
  rc=$?
  kill -0 "$launched" 2> /dev/null || { tail -n 5 "$XB_LOG"; echo "xenblkd exited during start $n"; return 1; }
  [ $rc -eq 0 ] || { proc_state "$launched"; return 1; }
  xt_info "xenblkd-start-$n" "$(xt_since "$t0") s, data path $dp"
  grep 'serving backend/' "$XB_LOG" | tail -n 1
}

# what a process is doing (for a start that does not finish)
proc_state() {
  echo "== process $1: $(tr '\0' ' ' < "/proc/$1/cmdline")"
  grep -E '^(State|Threads|VmRSS)' "/proc/$1/status"
  for t in /proc/"$1"/task/*; do echo "thread $(basename "$t") $(cat "$t/comm"): $(cut -d' ' -f3 "$t/stat") wchan=$(cat "$t/wchan" 2> /dev/null)"; done
  ls -l "/proc/$1/fd" | sed 's/.* \([0-9]* -> \)/\1/'
  tail -n 20 "$XB_LOG"
}

# scrape LABEL (busybox wget -T segfaults: timeout(1) instead): the daemon's /metrics now (per-device counters restart with each process)
scrape() {
  mkdir -p "$XB_METRICS"
  timeout 60 wget -q -O "$XB_METRICS/$1.txt" "http://$XB_HTTP/metrics" || { echo "GET /metrics failed" >&2; return 1; }
  grep '^xenblkd_device_' "$XB_METRICS/$1.txt" # none once every device is gone
  return 0
}

# guest_ops_above NAME N SECONDS: wait until NAME's workload has verified more than N writes
guest_ops_above() {
  xt_wait_for "$3" "$1 to verify write $(($2 + 1))" \
    sh -c "[ \$(xenstore-read /local/domain/$(domid_of "$1")/data/xentest/ops 2> /dev/null || echo 0) -gt $2 ]"
}

# ring_of NAME [VDEV]: what the frontend of NAME's disk (xvda) negotiated, e.g. "16-page ring, persistent grants on"
ring_of() {
  fe=/local/domain/$(domid_of "$1")/device/vbd/$(devid_of "${2:-xvda}")
  order=$(xenstore-read "$fe/ring-page-order" 2> /dev/null || echo 0)
  [ "$(xenstore-read "$fe/feature-persistent" 2> /dev/null)" = 1 ] && p=on || p=off
  echo "$((1 << order))-page ring, persistent grants $p"
}

# xenblkd_kill_restart NAME DATA_PATH [WHEN [VDEV]]: once NAME's workload verified a write since the
# daemon last started, freeze the daemon (SIGSTOP), let the guest queue requests for 2 s, SIGKILL
# it, start it again with DATA_PATH, and wait until the guest verifies another write, served by
# the new daemon. WHEN: random (default), a random moment; mid-write, just as the guest starts a
# write of 1 MiB or more (domu/disk.sh kill_point), so that write's requests (indirect ones on a
# ring that has them) wait in the ring across the kill. The new daemon must find requests
# waiting (four or more for mid-write) and logs how many. VDEV: the guest's disk whose workload
# runs (xvda by default).
xenblkd_kill_restart() {
  name=$1 dp=$2 when=${3:-random} vdev=${4:-xvda}
  dom=/local/domain/$(domid_of "$name")/data/xentest
  # I/O flows: the guest verified a write since the daemon last (re)started
  guest_ops_above "$name" "$(counter "ops-at-start.$name")" 300 || return 1
  k=$(($(counter xenblkd-kills) + 1))
  ring=$(ring_of "$name" "$vdev")
  [ "$vdev" = xvda ] || ring="$vdev: $ring"
  scrape "life-$k" > /dev/null || return 1
  pid=$(xenblkd_pid)
  [ -n "$pid" ] && kill -0 "$pid" || { echo "no running xenblkd to kill"; return 1; }
  if [ "$when" = mid-write ]; then
    xenstore-write "$dom/frozen" 0 "$dom/kill-armed" 1 || return 1
    xt_wait_for 120 "$name to start a write of 1 MiB or more" sh -c "xenstore-read $dom/io 2> /dev/null | grep -q '^write '" || return 1
    kill -STOP "$pid"
    at="as $name started a $(xenstore-read "$dom/io" | cut -d' ' -f3) write of $(xenstore-read "$dom/io" | cut -d' ' -f2) bytes"
    xenstore-write "$dom/frozen" 1
  else
    usleep $(((RANDOM % 1500) * 1000))
    kill -STOP "$pid"
    at="at a random moment"
  fi
  t0=$(xt_now)
  sleep 2
  kill -KILL "$pid"
  xt_wait_for 10 "pid $pid to die" sh -c "! kill -0 $pid 2> /dev/null" || return 1
  bump xenblkd-kills > /dev/null
  o1=$(xs_guest "$name" ops)
  echo "SIGKILL to xenblkd pid $pid after $name verified $o1 writes ($ring)"
  [ "$(xs_guest "$name" status)" = workload ] || { echo "the workload of $name is not running"; return 1; }
  xenblkd_start "$dp" || return 1
  grep 'serving backend/' "$XB_LOG" | tail -n 1 | grep -q 'recovered' || { echo "the restarted daemon recovered no device"; return 1; }
  echo "$o1" > "/run/xentest/ops-at-start.$name"
  guest_ops_above "$name" "$o1" 300 || return 1
  waiting=$(grep "\"pid\":$(xenblkd_pid)," "$XB_LOG" | grep "\"dev\":\"$(domid_of "$name")/$(devid_of "$vdev")\"" | grep '"msg":"dataplane started"' | tail -n 1 | sed -n 's/.*"waiting":\([0-9]*\).*/\1/p')
  xt_info "kill-$k" "$name ($ring) frozen $at, after $o1 verified writes; ${waiting:-?} requests waiting in the ring for the new daemon; I/O went on $(xt_since "$t0") s after the freeze; restarted with data path $dp"
  xt_info xenblkd-kills "$k"
  [ "${waiting:-0}" -gt 0 ] || { echo "the new daemon found no request waiting in the ring: the kill hit an idle ring"; return 1; }
  [ "$when" != mid-write ] || [ "$waiting" -ge 4 ] || { echo "only $waiting requests waited across a kill in the middle of a large write"; return 1; }
  echo "kill $k: $waiting requests waited in the ring across the kill"
}

# stop_workload NAME [LABEL]: ask the guest's workload to end; it saves its manifest, verifies
# everything and says wait-detach (or ends its workload phase). The fresh bytes it verified are
# kept as LABEL (default NAME) for fresh_verified.
stop_workload() {
  domid=$(domid_of "$1")
  xenstore-write "/local/domain/$domid/data/xentest/stop" 1 || return 1
  xt_wait_for 360 "$1's workload to end" sh -c "[ \"\$(xenstore-read /local/domain/$domid/data/xentest/status 2> /dev/null)\" != workload ]" || return 1
  xt_wait_for 120 "$1 to save its manifest" xenstore-exists "/local/domain/$domid/data/xentest/manifest" || return 1
  xs_guest "$1" fresh > "/run/xentest/fresh.${2:-$1}"
  echo "$1: $(xs_guest "$1" round) rounds, $(cat "/run/xentest/fresh.${2:-$1}") bytes of fresh data verified, manifest $(xs_guest "$1" manifest)"
}

# fresh_verified MIN_MIB NAME...: the guests verified (sha256, O_DIRECT read-back) at least
# MIN_MIB of fresh random data between them, over the daemon's kills
fresh_verified() {
  min=$(($1 << 20)) total=0 each=
  shift
  for g in "$@"; do
    b=$(cat "/run/xentest/fresh.$g" 2> /dev/null || echo 0)
    total=$((total + b)) each="$each $g=$b"
  done
  xt_info fresh-bytes-verified "$total ($each )"
  echo "fresh data verified by the guests: $total bytes ($each )"
  [ "$total" -ge "$min" ] || { echo "less than $((min >> 20)) MiB of fresh data verified"; return 1; }
}

# image_check: the manifest the guest left in the image, checked against the image file in
# dom0: what the guest wrote reached the backing file
image_check() {
  label=${1:-x}
  dd if="$XB_IMAGE" bs=65536 count=1 skip=$((MANIFEST_OFF / 65536)) 2> /dev/null | tr -d '\0' > "$XT_RUNDIR/manifest.block"
  set -- $(head -n 1 "$XT_RUNDIR/manifest.block")
  [ "$1" = XENTEST-MANIFEST ] || { echo "no manifest in $XB_IMAGE"; return 1; }
  n=$2
  tail -n +2 "$XT_RUNDIR/manifest.block" | grep . > "$XT_RUNDIR/manifest"
  [ "$(sha256sum < "$XT_RUNDIR/manifest" | cut -d' ' -f1)" = "$3" ] || { echo "manifest checksum mismatch"; return 1; }
  bad=0 bytes=0
  while read -r off size sum; do
    got=$(dd if="$XB_IMAGE" bs="$size" count=1 skip="$off" iflag=skip_bytes 2> /dev/null | sha256sum | cut -d' ' -f1)
    bytes=$((bytes + size))
    [ "$got" = "$sum" ] || { bad=$((bad + 1)); echo "MISMATCH in the image: $size bytes at $off"; }
  done < "$XT_RUNDIR/manifest"
  xt_info "image-check-$label" "$n regions, $bytes bytes"
  echo "$n regions ($bytes bytes) of the image match the guest's manifest, $bad do not"
  [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
}

expect_key() {
  v=$(xenstore-read "$1" 2> /dev/null)
  [ "$v" = "$2" ] || { echo "$1 is '$v', expected '$2'"; return 1; }
}

# vbd_connected NAME [ORDER [VDEV [SECTORS]]]: both ends of NAME's disk VDEV (xvda) Connected,
# with the keys libxl and blkfront expect; SECTORS: the disk's size (default: the raw image's)
vbd_connected() {
  domid=$(domid_of "$1") order=${2:-0} vdev=${3:-xvda}
  devid=$(devid_of "$vdev")
  be=/local/domain/0/backend/vbd/$domid/$devid fe=/local/domain/$domid/device/vbd/$devid
  xt_wait_for 200 "backend and frontend of $1 Connected" sh -c \
    "[ \"\$(xenstore-read $be/state 2> /dev/null)\" = 4 ] && [ \"\$(xenstore-read $fe/state 2> /dev/null)\" = 4 ]" \
    || { xenstore-ls -f "$be"; xenstore-ls -f "$fe"; return 1; }
  xenstore-ls -fp "$be"
  xenstore-ls -fp "$fe"
  sectors=${4:-$(($(stat -c %s "$XB_IMAGE") / 512))}
  bad=0
  for kv in online=1 hotplug-status=connected "frontend=$fe" "frontend-id=$domid" mode=w "dev=$vdev" \
    device-type=disk "sectors=$sectors" sector-size=512 info=0 feature-flush-cache=1 \
    max-ring-page-order=4 feature-persistent=1 feature-max-indirect-segments=256; do
    expect_key "$be/${kv%%=*}" "${kv#*=}" || bad=1
  done
  for kv in "backend=$be" backend-id=0 virtual-device=$devid device-type=disk protocol=x86_64-abi; do
    expect_key "$fe/${kv%%=*}" "${kv#*=}" || bad=1
  done
  xenstore-exists "$fe/event-channel" || { echo "no $fe/event-channel"; bad=1; }
  if [ "$order" -eq 0 ]; then
    xenstore-exists "$fe/ring-ref" || { echo "no $fe/ring-ref"; bad=1; }
  else
    expect_key "$fe/ring-page-order" "$order" || bad=1
    xenstore-exists "$fe/ring-ref$(((1 << order) - 1))" || { echo "no last ring-ref of $((1 << order))"; bad=1; }
  fi
  [ $bad -eq 0 ] || { echo "xenstore keys differ from what libxl and blkfront expect"; return 1; }
  xt_info "vbd-connected-$1$([ "$vdev" = xvda ] || echo "-$vdev")" "$(xenstore-ls "$be" | tr -s ' ' | tr '\n' ';')"
  echo "backend and frontend Connected with the expected keys"
}

# xenblkd_detach NAME VDEV: when the guest says wait-detach, unplug with `xenblkd detach`
xenblkd_detach() {
  domid=$(domid_of "$1")
  xt_wait_for 300 "$1 to be ready for the unplug" sh -c "[ \"\$(xenstore-read /local/domain/$domid/data/xentest/phase 2> /dev/null)\" = wait-detach ]" || return 1
  t0=$(xt_now)
  xb detach --domid "$domid" --vdev "$2" --xenstore "$XS_SOCKET" --timeout 60 || { echo "xenblkd detach failed"; return 1; }
  xt_info detach-seconds "$(xt_since "$t0")"
  for d in "/local/domain/0/backend/vbd/$domid/51712" "/local/domain/$domid/device/vbd/51712"; do
    ! xenstore-exists "$d" || { echo "$d is still there"; return 1; }
  done
  echo "backend and frontend directories are gone"
}

# xenblkd_attach NAME VDEV: when the guest says wait-attach, plug the image in again
xenblkd_attach() {
  domid=$(domid_of "$1")
  xt_wait_for 200 "$1 to see the disk go" sh -c "[ \"\$(xenstore-read /local/domain/$domid/data/xentest/phase 2> /dev/null)\" = wait-attach ]" || return 1
  t0=$(xt_now)
  xb attach --domid "$domid" --vdev "$2" --image "$XB_IMAGE" --xenstore "$XS_SOCKET" --wait 120 || { echo "xenblkd attach failed"; return 1; }
  xt_info attach-seconds "$(xt_since "$t0")"
  vbd_connected "$1" 0
}

# domu_gone NAME: the domain is gone, and with it every xenstore node of its disk; the
# daemon retired the device
domu_gone() {
  domid=$(domid_of "$1")
  xt_wait_for 120 "domain $domid to go" sh -c "! xl domid $1 > /dev/null 2>&1 && ! xenstore-exists /local/domain/$domid" || return 1
  xt_wait_for 60 "backend/vbd/$domid to go" sh -c "! xenstore-exists /local/domain/0/backend/vbd/$domid" || return 1
  ! xenstore-exists "/libxl/$domid" || { echo "/libxl/$domid is still there"; return 1; }
  xt_wait_for 30 "xenblkd to retire the device" sh -c "timeout 20 wget -q -O - http://$XB_HTTP/metrics | grep -q '^xenblkd_devices 0'" || return 1
  grep "remove XENBUS_PATH=backend/vbd/$domid" /var/log/xentest/vbd-hook.log | tail -n 1
  echo "domain $domid, its backend and frontend nodes and the daemon's device are gone"
}

# domu_shutdown NAME: xl shutdown (the guest closes its disk and powers off)
domu_shutdown() {
  xt_wait_for 200 "$1 to hold" grep -q '^XENTEST HOLD' "/var/log/xen/console/guest-$1.log" || return 1
  t0=$(xt_now)
  xl shutdown -w "$1" || { echo "xl shutdown failed"; return 1; }
  xt_info "xl-shutdown-$1-seconds" "$(xt_since "$t0")"
  domu_gone "$1"
}

# xenblkd_stop: the last scrape, then SIGTERM: the daemon stops gracefully
xenblkd_stop() {
  scrape "life-last" > /dev/null || return 1
  pid=$(xenblkd_pid)
  kill -TERM "$pid" || return 1
  xt_wait_for 60 "xenblkd to exit" sh -c "! kill -0 $pid 2> /dev/null" || return 1
  grep -q '"msg":"stopping' "$XB_LOG" || { echo "no 'stopping' in the log"; return 1; }
  echo "xenblkd stopped"
}

# daemon_facts: totals over every daemon life (scraped before each kill and before the stop),
# and the daemon log's errors
daemon_facts() {
  for m in read_requests write_requests flush_requests discard_requests read_sectors written_sectors errors; do
    v=$(cat "$XB_METRICS"/life-*.txt | awk -v m="xenblkd_device_${m}_total" '$1 ~ "^" m "{" { s += $2 } END { print s + 0 }')
    eval "t_$m=$v"
  done
  xt_info xenblkd-ops "read=$t_read_requests write=$t_write_requests flush=$t_flush_requests discard=$t_discard_requests error=$t_errors"
  xt_info xenblkd-bytes "read=$((t_read_sectors * 512)) written=$((t_written_sectors * 512))"
  xt_info xenblkd-starts "$(counter xenblkd-starts)"
  fatal=$(grep -c '"level":60' "$XB_LOG")
  errors=$(grep -c '"level":50' "$XB_LOG")
  allowed=$(cat "$XT_RUNDIR/xenblkd-log-allowed" 2> /dev/null || echo 0)
  unexpected=$(cat "$XT_RUNDIR/xenblkd-log-unexpected" 2> /dev/null || echo 0)
  xt_info xenblkd-log "$(wc -l < "$XB_LOG") lines, $errors errors, $fatal fatal; at error level: $allowed expected by their step, $unexpected unexpected"
  grep -E '"level":(50|60)' "$XB_LOG" | head -n 10
  echo "requests answered: read $t_read_requests, write $t_write_requests, flush $t_flush_requests, discard $t_discard_requests, errors $t_errors"
  [ "$fatal" -eq 0 ] || { echo "the daemon logged fatal errors"; return 1; }
  [ "$t_errors" -eq 0 ] || { echo "the daemon answered requests with errors"; return 1; }
}

# sessions_dump: the recorded sessions, whole, for the host to keep
sessions_dump() {
  for f in "$XB_SESSIONS"/*.jsonl; do
    [ -f "$f" ] || continue
    xt_dump "session.$(basename "$f" .jsonl)" "$f"
  done
  return 0
}
