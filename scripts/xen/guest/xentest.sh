# xentest step runner, sourced by the dom0 and domU /init (busybox ash).
# Markers on the console, parsed by the host (test/xen/lib/markers.js):
#   XENTEST PLAN <n> <step names...>          steps this scenario will run, in order
#   XENTEST STEP <name> BEGIN timeout=<s>s
#   XENTEST STEP <name> PASS <seconds>s
#   XENTEST STEP <name> FAIL <seconds>s <detail>
#   XENTEST STEP <name> SKIP <why>             not run because an earlier step failed
#   XENTEST INFO <key> <value...>              facts for the report (versions, keys, sizes)
#   XENTEST HEARTBEAT <uptime> ...
#   XENTEST DONE <origin> passed=<n> failed=<n> skipped=<n>
#   XENTEST FILE <origin> BEGIN <path> / END   a whole log, its lines as "<origin>|=<line>"
# A step runs a shell function of the scenario in its own session (setsid), so a timeout
# kills everything it started; its output goes to $XT_LOGDIR/<name>.log and then, indented,
# to the console. A scenario that defines xt_after_step gets it called with the step's name
# after every step (in a subshell); when it fails, so does the step.

XT_LIB=${XT_LIB:-/xentest/xentest.sh}
XT_LOGDIR=${XT_LOGDIR:-/var/log/xentest}
XT_RUNDIR=${XT_RUNDIR:-/run/xentest}
XT_CONSOLE=${XT_CONSOLE:-/dev/console}
XT_PASSED=0 XT_FAILED=0 XT_SKIPPED=0 XT_BROKEN=
XT_STEPS=

xt_say() { echo "$*" >> "$XT_CONSOLE"; }
xt_mark() { xt_say "XENTEST $*"; }
xt_info() { xt_mark "INFO $*"; }
xt_now() { cut -d' ' -f1 /proc/uptime; }
# elapsed seconds since $1 (uptime stamp), two decimals
xt_since() { awk -v a="$1" -v b="$(xt_now)" 'BEGIN { printf "%.2f", b - a }'; }
xt_log() { echo "[$(xt_now)] $*"; }

# Scenario files declare steps with `run NAME TIMEOUT FUNC [ARGS]` (stops the scenario on
# failure) or `always NAME TIMEOUT FUNC [ARGS]` (runs even after a failure: cleanup, checks).
# The first pass only collects the plan; the second pass executes.
XT_PASS=plan
run() { xt_dispatch normal "$@"; }
always() { xt_dispatch always "$@"; }
xt_dispatch() {
  kind=$1 name=$2
  [ "$XT_PASS" = define ] && return 0
  if [ "$XT_PASS" = plan ]; then XT_STEPS="$XT_STEPS $name"; return 0; fi
  shift 2
  if [ -n "$XT_BROKEN" ] && [ "$kind" != always ]; then
    XT_SKIPPED=$((XT_SKIPPED + 1))
    xt_mark "STEP $name SKIP after failure of $XT_BROKEN"
    return 0
  fi
  xt_step "$name" "$@"
}

# xt_step NAME TIMEOUT FUNC [ARGS...]
xt_step() {
  _n=$1 _tmo=$2; shift 2
  _log="$XT_LOGDIR/$_n.log"
  xt_mark "STEP $_n BEGIN timeout=${_tmo}s"
  _t0=$(xt_now)
  rm -f "$XT_RUNDIR/timeout.$_n"
  setsid sh "$XT_LIB" call "$XT_SCENARIO" "$@" > "$_log" 2>&1 < /dev/null &
  _pid=$!
  setsid sh -c "trap 'exit 0' TERM; sleep $_tmo & wait; echo > '$XT_RUNDIR/timeout.$_n'; kill -TERM -$_pid; sleep 3; kill -KILL -$_pid" \
    > /dev/null 2>&1 < /dev/null &
  _wd=$!
  wait $_pid; _rc=$?
  # the watchdog's group, and the watchdog itself in case a quick step ended before its setsid
  # (then there is no group yet, and it would sleep out the whole timeout and fail the step)
  kill -TERM -$_wd 2> /dev/null; kill -TERM $_wd 2> /dev/null; wait $_wd 2> /dev/null
  # a scenario's own check after every step (dom0: the daemon's log); its failure fails the step
  if type xt_after_step > /dev/null 2>&1; then
    (xt_after_step "$_n") >> "$_log" 2>&1 < /dev/null || { [ "$_rc" -ne 0 ] || _rc=97; }
  fi
  _dt=$(xt_since "$_t0")
  # the step's output, indented so it never reads as a marker
  tail -n "${XT_SHOW_LINES:-80}" "$_log" | sed 's/^/    | /' >> "$XT_CONSOLE"
  if [ -e "$XT_RUNDIR/timeout.$_n" ]; then
    _why="timeout after ${_tmo}s"
  elif [ "$_rc" -ne 0 ]; then
    _why="exit $_rc: $(grep -v '^[[:space:]]*$' "$_log" | tail -n 1 | cut -c1-200)"
  else
    _why=
  fi
  if [ -z "$_why" ]; then
    XT_PASSED=$((XT_PASSED + 1))
    xt_mark "STEP $_n PASS ${_dt}s"
    return 0
  fi
  XT_FAILED=$((XT_FAILED + 1))
  [ -n "$XT_BROKEN" ] || XT_BROKEN=$_n
  xt_mark "STEP $_n FAIL ${_dt}s $_why"
  return 1
}

# xt_scenario ORIGIN FILE: plan, then run every step of FILE; prints DONE.
xt_scenario() {
  XT_ORIGIN=$1 XT_SCENARIO=$2
  export XT_SCENARIO
  mkdir -p "$XT_LOGDIR" "$XT_RUNDIR"
  XT_PASS=plan; XT_STEPS=
  . "$XT_SCENARIO"
  set -- $XT_STEPS
  xt_mark "PLAN $# $*"
  XT_PASS=exec
  . "$XT_SCENARIO"
  xt_mark "DONE $XT_ORIGIN passed=$XT_PASSED failed=$XT_FAILED skipped=$XT_SKIPPED"
}

xt_heartbeat() {
  while :; do
    sleep "${1:-10}"
    xt_mark "HEARTBEAT $(xt_now) load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" \
      "memavail_kb=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)"
  done
}

# xt_relay ORIGIN FILE: copy FILE's lines to the console as "ORIGIN| line", following it
# (also across truncation). One relay per origin: a second call for it does nothing.
# Live relays poll once a second and may lag under load; each keeps the count of lines it
# relayed, so xt_dump can let it catch up (markers count only when relayed live). At the end,
# xt_dump_relays prints every relayed file whole, and the host keeps that copy.
xt_relay() {
  _pf="$XT_RUNDIR/relay.$1.pid"
  if [ -f "$_pf" ] && kill -0 "$(cat "$_pf")" 2> /dev/null; then return 0; fi
  echo 0 > "$XT_RUNDIR/relay.$1.count"
  setsid sh -c 'n=0; tail -n +1 -F "$1" 2> /dev/null | while IFS= read -r l; do
      echo "$2| $l"; n=$((n + 1)); echo "$n" > "$4"; done >> "$3"' \
    sh "$2" "$1" "$XT_CONSOLE" "$XT_RUNDIR/relay.$1.count" < /dev/null > /dev/null 2>&1 &
  echo $! > "$_pf"
  echo "$2" > "$XT_RUNDIR/relay.$1.file"
}

# xt_dump ORIGIN FILE: let ORIGIN's relay catch up (30 s at most), stop it, then print FILE
# framed by FILE markers, each line as "ORIGIN|=line" (never read as a marker)
xt_dump() {
  _pf="$XT_RUNDIR/relay.$1.pid"
  if [ -f "$_pf" ]; then
    _want=$(wc -l < "$2" 2> /dev/null || echo 0)
    _i=0
    while [ $_i -lt 60 ]; do
      _got=$(cat "$XT_RUNDIR/relay.$1.count" 2> /dev/null) # empty while the relay rewrites it
      [ "${_got:-0}" -ge "$_want" ] && break
      sleep 0.5; _i=$((_i + 1))
    done
    kill -TERM -"$(cat "$_pf")" 2> /dev/null
  fi
  rm -f "$_pf"
  xt_mark "FILE $1 BEGIN $2"
  [ -f "$2" ] && sed "s/^/$1|=/" "$2" >> "$XT_CONSOLE"
  xt_mark "FILE $1 END"
}

xt_dump_relays() {
  for _f in "$XT_RUNDIR"/relay.*.file; do
    [ -f "$_f" ] || continue
    _o=${_f#"$XT_RUNDIR"/relay.}
    xt_dump "${_o%.file}" "$(cat "$_f")"
  done
}

# xt_wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it succeeds.
xt_wait_for() {
  _w=$1 _what=$2; shift 2
  _end=$(awk -v n="$(xt_now)" -v w="$_w" 'BEGIN { print n + w }')
  while ! "$@"; do
    if awk -v n="$(xt_now)" -v e="$_end" 'BEGIN { exit !(n > e) }'; then
      echo "gave up after ${_w}s waiting for $_what"
      return 1
    fi
    sleep 0.5
  done
}

# Entry point for a step's own process: `sh xentest.sh call SCENARIO FUNC [ARGS]`.
if [ "${1:-}" = call ]; then
  XT_SCENARIO=$2; shift 2
  XT_PASS=define
  . "$XT_SCENARIO"
  "$@"
  exit $?
fi
