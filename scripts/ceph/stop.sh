#!/usr/bin/env bash
# Stops the daemons scripts/ceph/start.sh started in $CEPH_DIR (by pid file, and only a pid
# whose command line names that cluster's conf), then deletes $CEPH_DIR.
#   CEPH_DIR=/tmp/xenblkd-ceph   CEPH_KEEP=1 keeps the folder (logs)
#   CEPH_STOP_GRACE=5            seconds per stage before SIGKILL (0 = SIGKILL at once)
# OSD first, mon last: a TERMed OSD waits 5 s for a mon that is already gone.
set -uo pipefail
CEPH_DIR=${CEPH_DIR:-/tmp/xenblkd-ceph}
GRACE=${CEPH_STOP_GRACE:-5}
n=0
# a killed daemon becomes a zombie until PID 1 reaps it: a zombie counts as gone
alive() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$CEPH_DIR/ceph.conf"; }
stop_stage() {
  local pids=() f pid
  for f in "$@"; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if ours "$pid"; then
      kill -CONT "$pid" 2>/dev/null   # a test may have SIGSTOPped it
      if [ "$GRACE" = 0 ]; then kill -KILL "$pid"; else kill -TERM "$pid"; fi
      pids+=("$pid"); n=$((n + 1))
    fi
  done
  local deadline=$(( $(date +%s%N) + GRACE * 1000000000 ))
  for pid in "${pids[@]}"; do
    while alive "$pid" && [ "$(date +%s%N)" -lt "$deadline" ]; do sleep 0.05; done
    if alive "$pid"; then
      [ "$GRACE" = 0 ] || echo "pid $pid still up after ${GRACE}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
    while alive "$pid"; do sleep 0.05; done
  done
}
shopt -s nullglob
stop_stage "$CEPH_DIR"/run/osd.*.pid
stop_stage "$CEPH_DIR"/run/mon.*.pid
[ "${CEPH_KEEP:-0}" = 1 ] || rm -rf "$CEPH_DIR"
echo "stopped $n daemon(s)"
