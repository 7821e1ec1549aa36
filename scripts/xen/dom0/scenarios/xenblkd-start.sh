# Diagnostic: where a start of xenblkd in dom0 spends its time: the native modules and the
# event store alone, then a CPU profile of the daemon's start (stopped with SIGTERM) summarized.
. /xentest/dom0/steps.sh
. /xentest/dom0/xenblkd.sh
XB_START_WAIT=400 XB_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/var/log/xentest/prof"

timed() {
  label=$1; shift
  t0=$(xt_now)
  "$@" || { echo "$* failed"; return 1; }
  xt_info "time-$label" "$(xt_since "$t0") s"
}

stop_now() {
  pid=$(xenblkd_pid)
  kill -TERM "$pid"
  xt_wait_for 200 "xenblkd to exit" sh -c "! kill -0 $pid 2> /dev/null"
}

profile_summary() {
  for f in /var/log/xentest/prof/*.cpuprofile; do node "$PROBE_DIR/cpuprofile-summary.js" "$f" 30; done
}

boot_steps
run node-e 120 timed node-e node -e 0
run koffi 200 timed koffi sh -c "cd $XENBLKD_DIR && node -e 'require(\"koffi\")'"
run classic-level 200 timed classic-level sh -c "cd $XENBLKD_DIR && node -e 'const { ClassicLevel } = require(\"classic-level\"); const db = new ClassicLevel(\"/tmp/db\"); db.open().then(() => db.put(\"a\", \"b\")).then(() => db.close())'"
run bundle-help 200 timed bundle-help sh -c "cd $XENBLKD_DIR && node $XB_MAIN run --help > /dev/null"
run xenblkd-start 420 xenblkd_start auto
run xenblkd-stop 300 stop_now
run profile 200 profile_summary
