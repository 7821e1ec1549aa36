# Step functions for dom0 scenarios (sourced by scenario files; each runs inside a step).
# Conventions: print what you see, exit non-zero with a last line that says why.
XENBLKD_DIR=/opt/xenblkd
XEN_BIN=/usr/lib/xen-4.17/bin
XS_SOCKET=/var/run/xenstored/socket
PROBE_DIR=$XENBLKD_DIR/scripts/xen/probe

# --- boot: what every scenario needs before it can use xl or xenstore -------------------
boot_steps() {
  run modules 60 load_modules
  run xenstored 60 start_xenstored
  run xen-init-dom0 60 init_dom0
  run xenconsoled 30 start_xenconsoled
  run versions 30 report_versions
}

load_modules() {
  # order written at build time, dependencies first
  for m in $(cat /xentest/modules.dom0); do
    name=$(basename "$m" .ko)
    if grep -q "^$(echo "$name" | tr - _) " /proc/modules; then echo "$name: already loaded"; continue; fi
    insmod "/lib/modules/$m" || { echo "insmod $name failed"; return 1; }
    xt_log "$name: loaded"
  done
  mount -t xenfs xenfs /proc/xen || { echo "mount xenfs failed"; return 1; }
  xt_log "xenfs mounted"
  ls /dev/xen
  for d in evtchn gntdev gntalloc privcmd xenbus; do
    [ -c /dev/xen/$d ] || { echo "missing /dev/xen/$d"; return 1; }
  done
}

start_xenstored() {
  "$XEN_BIN/xenstored" --pid-file /run/xen/xenstored.pid || { echo "xenstored failed to start"; return 1; }
  xt_wait_for 30 "the xenstored socket" test -S "$XS_SOCKET" || return 1
  xt_wait_for 30 "xenstore to answer" xenstore-read /local > /dev/null 2>&1 || true
  xenstore-ls -f / | head -20
  xenstore-list / > /dev/null || { echo "xenstore does not answer"; return 1; }
}

init_dom0() {
  "$XEN_BIN/xen-init-dom0" || { echo "xen-init-dom0 failed"; return 1; }
  name=$(xenstore-read /local/domain/0/name) || { echo "no /local/domain/0/name"; return 1; }
  echo "dom0 name: $name"
  [ "$name" = Domain-0 ] || { echo "unexpected dom0 name '$name'"; return 1; }
}

start_xenconsoled() {
  mkdir -p /var/log/xen/console
  "$XEN_BIN/xenconsoled" --pid-file=/run/xen/xenconsoled.pid --log=all \
    --log-dir=/var/log/xen/console || { echo "xenconsoled failed to start"; return 1; }
  xt_wait_for 10 "the xenconsoled pid file" test -s /run/xen/xenconsoled.pid || return 1
  kill -0 "$(cat /run/xen/xenconsoled.pid)" || { echo "xenconsoled is not running"; return 1; }
}

report_versions() {
  v=/sys/hypervisor/version
  xen="$(cat $v/major).$(cat $v/minor)$(cat $v/extra)"
  xt_info xen-version "$xen"
  xt_info linux-version "$(uname -r)"
  xt_info linux-build "$(uname -v)"
  xt_info dom0-cpus "$(grep -c ^processor /proc/cpuinfo)"
  xt_info dom0-memtotal-kb "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
  echo "xen $xen, linux $(uname -r)"
  [ -n "$xen" ]
}

# --- Node and the project -------------------------------------------------------------------
node_runs() {
  out=$(node -e 'console.log(`node ${process.version} ${process.arch} ${process.platform}`)') || return 1
  echo "$out"
  xt_info node-version "$(echo "$out" | cut -d' ' -f2)"
  case "$out" in "node v"*" x64 linux") ;; *) echo "unexpected output"; return 1 ;; esac
}

cli_version() {
  out=$(cd "$XENBLKD_DIR" && node dist/cli/main.js version) || { echo "xenblkd version failed"; return 1; }
  echo "$out"
  want="xenblkd $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$XENBLKD_DIR/package.json" | head -1)"
  [ "$out" = "$want" ] || { echo "expected '$want'"; return 1; }
}

ffi_probe() {
  node "$PROBE_DIR/ffi.js"
}

xenstore_raw() {
  # the raw-socket reader must agree with libxenstore's command-line client
  want=$(xenstore-read /local/domain/0/name) || return 1
  wantdir=$(xenstore-list /local/domain | tr '\n' ' ')
  out=$(node "$PROBE_DIR/xs-raw.js" "$XS_SOCKET" read /local/domain/0/name) || return 1
  dir=$(node "$PROBE_DIR/xs-raw.js" "$XS_SOCKET" directory /local/domain) || return 1
  echo "read /local/domain/0/name -> '$out' (xenstore-read: '$want')"
  echo "directory /local/domain -> '$dir' (xenstore-list: '$wantdir')"
  [ "$out" = "$want" ] || { echo "read differs"; return 1; }
  [ "$(echo $dir)" = "$(echo $wantdir)" ] || { echo "directory differs"; return 1; }
}

# --- a PV domU with a vbd served from userspace -----------------------------------------------
DISK_DIR=/var/lib/xentest
DOMU_CFG_DIR=/xentest/domu

# vbd_probe_start IMAGE_MIB: the placeholder backend watches backend/vbd before xl create
# (libxl gives the backend only 10 s to reach InitWait).
vbd_probe_start() {
  mkdir -p "$DISK_DIR"
  dd if=/dev/zero of="$DISK_DIR/disk0.img" bs=1M count=0 seek="${1:-64}" 2> /dev/null
  ls -l "$DISK_DIR/disk0.img"
  setsid node "$PROBE_DIR/vbd-placeholder.js" "$XS_SOCKET" > /var/log/xentest/vbd-probe.log 2>&1 < /dev/null &
  echo $! > /run/xentest/vbd-probe.pid
  xt_relay vbd-probe /var/log/xentest/vbd-probe.log
  xt_wait_for 30 "the probe to watch backend/vbd" grep -q '^WATCHING' /var/log/xentest/vbd-probe.log
}

# domu_create NAME SCENARIO [CONFIG]: xl create from /xentest/domu/CONFIG.cfg (default pv)
# with @NAME@ and @SCENARIO@ filled in; the domU runs its scenario SCENARIO
domu_create() {
  name=$1 scen=$2 cfg=${3:-pv}
  : > "/var/log/xen/console/guest-$name.log"
  xt_relay "$name" "/var/log/xen/console/guest-$name.log"
  sed "s/@NAME@/$name/; s/@SCENARIO@/$scen/" "$DOMU_CFG_DIR/$cfg.cfg" > "/run/xentest/$name.cfg"
  cat "/run/xentest/$name.cfg"
  t0=$(xt_now)
  xl create "/run/xentest/$name.cfg" > "/var/log/xentest/xl-create-$name.log" 2>&1; rc=$?
  cat "/var/log/xentest/xl-create-$name.log"
  xt_info "xl-create-$name-seconds" "$(xt_since "$t0")"
  [ $rc -eq 0 ] || { echo "xl create failed with $rc"; cat /var/log/xentest/vbd-hook.log 2> /dev/null; return 1; }
  domid=$(xl domid "$name") || return 1
  echo "$domid" > "/run/xentest/$name.domid"
  echo "$name is domain $domid"
}

domid_of() { cat "/run/xentest/$1.domid"; }

# blkfront_initialised NAME ORDER: the probe saw the frontend reach Initialised with the ring
# keys of a 2^ORDER-page ring (order 0: ring-ref; else ring-page-order and ring-ref0..N-1)
blkfront_initialised() {
  domid=$(domid_of "$1") order=${2:-0}
  log=/var/log/xentest/vbd-probe.log
  pat="^FRONTEND /local/domain/$domid/device/vbd/[0-9]* state=3 "
  xt_wait_for 120 "frontend state 3 of domain $domid" grep -q "$pat" "$log" || return 1
  line=$(grep "$pat" "$log" | head -1)
  echo "$line"
  keys=${line#* keys=}
  xt_info "blkfront-keys-order$order" "$keys"
  want="event-channel protocol"
  if [ "$order" -eq 0 ]; then
    want="$want ring-ref"
  else
    echo "$keys" | grep -q "\"ring-page-order\":\"$order\"" || { echo "ring-page-order is not $order"; return 1; }
    i=0
    while [ $i -lt $((1 << order)) ]; do want="$want ring-ref$i"; i=$((i + 1)); done
  fi
  for k in $want; do
    echo "$keys" | grep -q "\"$k\"" || { echo "frontend key $k missing"; return 1; }
  done
  be=$(grep "^BACKEND /local/domain/0/backend/vbd/$domid/" "$log" | head -1)
  xt_info "backend-keys-order$order" "${be#* keys=}"
  xenstore-ls -fp "/local/domain/$domid/device/vbd"
  xenstore-ls -fp "/local/domain/0/backend/vbd/$domid"
}

# guest_done NAME: the domU's own scenario printed DONE with no failure
guest_done() {
  log="/var/log/xen/console/guest-$1.log"
  xt_wait_for "${2:-120}" "the domU scenario to finish" grep -q "^XENTEST DONE" "$log" || return 1
  grep "^XENTEST DONE" "$log"
  grep -q "^XENTEST DONE .* failed=0 skipped=0" "$log" || { echo "the domU scenario failed"; return 1; }
}

domu_destroy() {
  name=$1 domid=$(domid_of "$1")
  t0=$(xt_now)
  xl destroy "$name" || { echo "xl destroy failed"; return 1; }
  xt_wait_for 60 "domain $domid to leave xenstore" sh -c "! xenstore-exists /local/domain/$domid"
  xt_wait_for 60 "backend/vbd/$domid to go" sh -c "! xenstore-exists /local/domain/0/backend/vbd/$domid" || return 1
  xt_info "xl-destroy-$name-seconds" "$(xt_since "$t0")"
  echo "domain $domid and its backend nodes are gone"
}

# every device the probe served was removed again, then stop it
vbd_probe_stop() {
  pid=$(cat /run/xentest/vbd-probe.pid)
  log=/var/log/xentest/vbd-probe.log
  served=$(grep -c '^BACKEND ' "$log")
  xt_wait_for 20 "the probe to see its $served devices removed" \
    sh -c "[ \$(grep -c '^REMOVED ' $log) -ge $served ]"
  rc=$?
  grep -E '^(REMOVED|ERROR) ' "$log"
  kill "$pid" 2> /dev/null
  grep -q '^ERROR ' "$log" && { echo "the probe logged errors"; return 1; }
  return $rc
}

# --- final checks -----------------------------------------------------------------------------
# no crash in dom0's kernel log nor in any guest console log (domU kernels log there)
dmesg_clean() {
  pat='segfault|general protection|BUG:|Oops|Call Trace|traps:|Kernel panic'
  bad=$(dmesg | grep -iE "$pat" | head -20)
  for g in /var/log/xen/console/guest-*.log; do
    [ -f "$g" ] || continue
    gb=$(grep -iE "$pat" "$g" | head -10)
    [ -z "$gb" ] || bad="$bad
$(basename "$g"): $gb"
  done
  [ -z "$bad" ] || { echo "$bad"; echo "kernel logs show crashes"; return 1; }
  echo "no segfaults, oopses or traps in dom0 dmesg or guest consoles"
}

show_logs() {
  for f in /var/log/xentest/vbd-hook.log /var/log/xen/xl-*.log; do
    [ -f "$f" ] || continue
    echo "== $f"; tail -n 30 "$f"
  done
  return 0
}
