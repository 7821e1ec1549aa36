# Diagnostic: how long Node and the daemon's CLI take to start in dom0 (TCG, PV): every
# process start costs page-table hypercalls, so start-up dominates a restarted daemon's pause.
. /xentest/dom0/steps.sh

timed() {
  label=$1; shift
  t0=$(xt_now)
  "$@" > /dev/null || { echo "$* failed"; return 1; }
  xt_info "start-$label" "$(xt_since "$t0") s: $*"
}

boot_steps
run node-version 60 timed node-version node --version
run node-e 120 timed node-e node -e 0
run cli-version 200 timed cli-version node /opt/xenblkd/dist/cli/main.js version
run run-help 200 timed run-help node /opt/xenblkd/dist/cli/main.js run --help
run bundle 200 timed bundle sh -c '[ ! -f /opt/xenblkd/dist/xenblkd.js ] || node /opt/xenblkd/dist/xenblkd.js run --help'

