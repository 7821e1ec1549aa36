#!/usr/bin/env bash
# A throw-away single-node Ceph for tests and the demo: 1 mon, 1 OSD (memstore by default),
# no mgr, one pool, optionally one RBD image. Everything lives under $CEPH_DIR: nothing is
# written to /etc/ceph, /var/lib/ceph or /var/log/ceph; no systemd (the daemons fork and
# write pid files under $CEPH_DIR/run). Stop it with stop.sh and the same CEPH_DIR.
#
# Env knobs (all optional):
#   CEPH_DIR=/tmp/xenblkd-ceph    scratch root: wiped and recreated (refused while a daemon runs)
#   CEPH_PORT=0                   mon msgr2 port on 127.0.0.1; 0 = a free port picked here
#   CEPH_POOL=rbd                 pool to create ('' = none)
#   CEPH_IMAGE=img                RBD image created in the pool ('' = none)
#   CEPH_IMAGE_SIZE=256M
#   CEPH_IMAGE_FEATURES=''        e.g. layering (no exclusive lock); '' = librbd's defaults
#   CEPH_OBJECTSTORE=memstore     memstore (RAM) | bluestore (sparse file in CEPH_DIR)
#   CEPH_WATCH_TIMEOUT=''         osd client watch timeout, seconds; '' = Ceph's default (30):
#                                 how long a killed client's watch (and exclusive lock) lives on
#   CEPH_EXTRA_CONF=''            extra lines for [global]
# Prints `export CEPH_CONF=...` last (and the port as CEPH_PORT=...).
set -euo pipefail

CEPH_DIR=${CEPH_DIR:-/tmp/xenblkd-ceph}
CEPH_PORT=${CEPH_PORT:-0}
CEPH_POOL=${CEPH_POOL-rbd}
CEPH_IMAGE=${CEPH_IMAGE-img}
CEPH_IMAGE_SIZE=${CEPH_IMAGE_SIZE:-256M}
CEPH_IMAGE_FEATURES=${CEPH_IMAGE_FEATURES:-}
CEPH_OBJECTSTORE=${CEPH_OBJECTSTORE:-memstore}
CEPH_WATCH_TIMEOUT=${CEPH_WATCH_TIMEOUT:-}

for tool in ceph-mon ceph-osd ceph monmaptool rbd; do
  command -v "$tool" >/dev/null || { echo "$tool not found: scripts/install-test-deps.sh installs the Ceph packages" >&2; exit 2; }
done

t0=$(date +%s%N)
ts() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '[%3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }

# refuse to wipe a running cluster
for f in "$CEPH_DIR"/run/*.pid; do
  [ -e "$f" ] || continue
  pid=$(cat "$f")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$CEPH_DIR/ceph.conf"; then
    echo "ceph daemon $pid still runs from $CEPH_DIR: run scripts/ceph/stop.sh first" >&2; exit 1
  fi
done

port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
if [ "$CEPH_PORT" = 0 ]; then
  # a free port outside the OSDs' 6800-7300 range and the ephemeral range
  for _ in $(seq 1 50); do
    CEPH_PORT=$(( 20000 + RANDOM % 12000 ))
    port_busy "$CEPH_PORT" || break
  done
fi
port_busy "$CEPH_PORT" && { echo "port $CEPH_PORT is in use: set CEPH_PORT" >&2; exit 1; }

rm -rf "$CEPH_DIR"
mkdir -p "$CEPH_DIR"/{mon/a,osd/0,run,log,crash}

FSID=$(cat /proc/sys/kernel/random/uuid)
CONF=$CEPH_DIR/ceph.conf
export CEPH_CONF=$CONF
watch_line=""
[ -n "$CEPH_WATCH_TIMEOUT" ] && watch_line="osd client watch timeout = $CEPH_WATCH_TIMEOUT"

cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$CEPH_PORT]
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
keyring = $CEPH_DIR/keyring
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$name.asok
pid file = $CEPH_DIR/run/\$name.pid
log file = $CEPH_DIR/log/\$name.log
crash dir = $CEPH_DIR/crash
mon data = $CEPH_DIR/mon/\$id
osd data = $CEPH_DIR/osd/\$id
mon cluster log file = $CEPH_DIR/log/cluster.log
err to stderr = false
log to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
osd crush chooseleaf type = 0
mon osd down out interval = 0
osd objectstore = $CEPH_OBJECTSTORE
memstore device bytes = 4294967296
bluestore block path = $CEPH_DIR/osd/\$id/block.file
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mount = false
bluestore cache size = 268435456
osd memory target = 939524096
osd scrub begin hour = 0
osd scrub end hour = 0
rbd cache = false
$watch_line
${CEPH_EXTRA_CONF:-}

[client]
# client processes share the name client.admin: \$pid keeps their sockets and logs apart
admin socket = $CEPH_DIR/run/\$name.\$pid.asok
log file = $CEPH_DIR/log/\$name.\$pid.log
CONF

monmaptool --create --clobber --enable-all-features --fsid "$FSID" \
  --addv a "[v2:127.0.0.1:$CEPH_PORT]" "$CEPH_DIR/monmap" >/dev/null
ceph-mon --conf "$CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap"
# memstore and the mon use glibc malloc: fewer arenas keep the OSD's RSS near 1 GB
export MALLOC_ARENA_MAX=2
ceph-mon --conf "$CONF" -i a
ceph --conf "$CONF" --connect-timeout 30 mon stat >/dev/null
ts "mon answers on 127.0.0.1:$CEPH_PORT"

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph --conf "$CONF" osd new "$OSD_UUID")
[ "$OSD_ID" = 0 ] || { echo "unexpected osd id $OSD_ID" >&2; exit 1; }
ceph-osd --conf "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$CEPH_DIR/log/osd.0.mkfs.out" 2>&1
ceph-osd --conf "$CONF" -i 0
for _ in $(seq 1 120); do
  ceph --conf "$CONF" osd dump 2>/dev/null | grep -q '^osd.0 up' && break
  sleep 0.25
done
ceph --conf "$CONF" osd dump | grep -q '^osd.0 up' || { echo "osd.0 did not come up (see $CEPH_DIR/log/osd.0.log)" >&2; exit 1; }
ts "osd.0 up"

if [ -n "$CEPH_POOL" ]; then
  ceph --conf "$CONF" osd pool create "$CEPH_POOL" 8 8 >/dev/null 2>&1
  rbd --conf "$CONF" pool init "$CEPH_POOL"   # returns once the PGs are active
  ts "pool $CEPH_POOL ready"
  if [ -n "$CEPH_IMAGE" ]; then
    feat=()
    [ -n "$CEPH_IMAGE_FEATURES" ] && feat=(--image-feature "$CEPH_IMAGE_FEATURES")
    rbd --conf "$CONF" create --size "$CEPH_IMAGE_SIZE" "${feat[@]}" "$CEPH_POOL/$CEPH_IMAGE"
    ts "image $CEPH_POOL/$CEPH_IMAGE ($CEPH_IMAGE_SIZE) created"
  fi
fi
echo "CEPH_PORT=$CEPH_PORT"
echo "export CEPH_CONF=$CONF"
