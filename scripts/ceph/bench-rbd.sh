#!/usr/bin/env bash
# Same-run comparison on one image: `rbd bench` against the rbd driver (bench-rbd.ts), QD 32,
# 4 KiB random and 64 KiB sequential, write then read. Needs a cluster (start.sh) and
# CEPH_CONF; env POOL=rbd IMAGE=img OPS=20000 ROUNDS=2.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${CEPH_CONF:?set CEPH_CONF (start.sh prints it)}"
POOL=${POOL:-rbd}; IMAGE=${IMAGE:-img}; OPS=${OPS:-20000}; ROUNDS=${ROUNDS:-2}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
"$ROOT/node_modules/.bin/esbuild" --bundle --platform=node --target=node20 --external:koffi \
  --log-level=error "$ROOT/scripts/ceph/bench-rbd.ts" --outfile="$OUT/bench-rbd.js"
size=$(rbd --conf "$CEPH_CONF" info "$POOL/$IMAGE" --format json | sed -n 's/.*"size":\([0-9]*\).*/\1/p')
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  for t in "write 4K rand $((OPS * 4096))" "read 4K rand $((OPS * 4096))" "write 64K seq $size" "read 64K seq $size"; do
    set -- $t
    printf 'rbd bench   %-5s %-3s %-4s QD32: ' "$1" "$2" "$3"
    rbd --conf "$CEPH_CONF" bench --io-type "$1" --io-size "$2" --io-pattern "$3" --io-threads 32 \
      --io-total "$4" "$POOL/$IMAGE" 2>&1 | tail -1
  done
  NODE_PATH="$ROOT/node_modules" CEPH_CONF=$CEPH_CONF POOL=$POOL IMAGE=$IMAGE OPS=$OPS QD=32 node "$OUT/bench-rbd.js"
done
