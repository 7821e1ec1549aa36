#!/bin/sh
# dom0 layer: the project's production node_modules (native addons for linux-x64 only).
# usage: ROOT=<staging dir> OUT=<file> PROJECT=<repo> dom0-node-modules.sh
. "$(dirname "$0")/common.sh"
fresh_root
dest="$ROOT/opt/xenblkd"
mkdir -p "$dest"
cd "$PROJECT"
npm ls --omit=dev --parseable --all 2> /dev/null | tail -n +2 | sed "s#^$PROJECT/##" | while read -r p; do
  [ -e "$dest/$p" ] || cp -a --parents "$p" "$dest/"
done
[ -d "$dest/node_modules" ] || { echo "no production node_modules found in $PROJECT" >&2; exit 1; }
# what Node never loads at run time
find "$dest/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' \
  -o -name '*.d.cts' -o -name '*.md' -o -name '*.markdown' \) -delete
find "$dest/node_modules" -type d -path '*/prebuilds/*' -prune ! -name 'linux-x64*' -exec rm -rf {} +
cd "$ROOT"
pack_root
