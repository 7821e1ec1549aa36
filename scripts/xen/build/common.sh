# Shared by the initramfs builders. Each builder fills a fresh staging dir ($ROOT) and packs it
# into $OUT (a compressed newc cpio). Inputs they read: KVER, PROJECT, XEN_COMPRESS.
set -eu
KVER=${KVER:-$(ls /boot/vmlinuz-* | sed 's#.*/vmlinuz-##' | sort -V | tail -n 1)}
MODDIR=/lib/modules/$KVER
XEN_BIN=/usr/lib/xen-4.17/bin
ROOT=$(realpath -m "$ROOT")
OUT=$(realpath -m "$OUT")

fresh_root() {
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
}

# busybox with one symlink per applet in /bin
add_busybox() {
  mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin"
  cp /bin/busybox "$ROOT/bin/busybox"
  for a in $("$ROOT/bin/busybox" --list); do
    [ -e "$ROOT/bin/$a" ] || ln -s busybox "$ROOT/bin/$a"
  done
}

# copy files (following symlinks) with the shared libraries ldd says they need
add_with_libs() {
  for f in "$@"; do
    cp -L --parents "$f" "$ROOT/"
    for l in $(ldd "$f" 2> /dev/null | grep -oE '/[^ ]+'); do
      [ -e "$ROOT$l" ] || cp -L --parents "$l" "$ROOT/"
    done
  done
}

# add_modules LISTFILE NAME...: copy modules and their dependencies (from modules.dep) into
# /lib/modules, uncompressed, and write their load order (dependencies first) to LISTFILE
add_modules() {
  list=$1; shift
  mkdir -p "$ROOT/lib/modules" "$(dirname "$ROOT$list")"
  : > "$ROOT$list"
  for name in "$@"; do add_module "$name" "$list"; done
}

add_module() {
  local rel deps d base
  rel=$(grep -E "(^|/)$1\.ko(\.xz|\.zst|\.gz)?:" "$MODDIR/modules.dep" | head -n 1 | cut -d: -f1)
  [ -n "$rel" ] || { echo "module $1 not found in $MODDIR/modules.dep" >&2; exit 1; }
  deps=$(grep -E "^$rel:" "$MODDIR/modules.dep" | cut -d: -f2)
  for d in $deps; do add_module "$(basename "$d" | sed -E 's/\.ko(\.xz|\.zst|\.gz)?$//')" "$2"; done
  base=$(basename "$rel" | sed -E 's/\.ko(\.xz|\.zst|\.gz)?$//').ko
  grep -qx "$base" "$ROOT$2" && return 0
  case "$rel" in
  *.xz) xz -dc "$MODDIR/$rel" > "$ROOT/lib/modules/$base" ;;
  *.zst) zstd -qdc "$MODDIR/$rel" > "$ROOT/lib/modules/$base" ;;
  *.gz) gzip -dc "$MODDIR/$rel" > "$ROOT/lib/modules/$base" ;;
  *) cp "$MODDIR/$rel" "$ROOT/lib/modules/$base" ;;
  esac
  echo "$base" >> "$ROOT$2"
}

# pack $ROOT into $OUT; prints "<unpacked bytes> <files>" to $OUT.stats
pack_root() {
  tmp="$OUT.tmp"
  ( cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet ) > "$tmp.cpio"
  case "${XEN_COMPRESS:-zstd}" in
  zstd) zstd -q -T0 -3 -f -o "$tmp" "$tmp.cpio" ;;
  gzip) gzip -1 -c "$tmp.cpio" > "$tmp" ;;
  none) cp "$tmp.cpio" "$tmp" ;;
  *) echo "unknown XEN_COMPRESS ${XEN_COMPRESS}" >&2; exit 1 ;;
  esac
  echo "$(du -sb --apparent-size "$ROOT" | cut -f1) $(find "$ROOT" | wc -l)" > "$OUT.stats"
  rm -f "$tmp.cpio"
  mv "$tmp" "$OUT"
}
