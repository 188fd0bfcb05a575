#!/usr/bin/env bash
# Builds the tiny demo guest "batu-demo" from Debian packages only:
#   build/images/batu-demo.qcow2       ext4 root filesystem (busybox-static userland, dropbear)
#   build/images/batu-demo.vmlinuz     Debian cloud kernel (linux-image-<ver>-cloud-amd64)
#   build/images/batu-demo.initrd      gzipped cpio: loads virtio modules, mounts /dev/vda, switch_root
#   build/images/batu-demo.json        metadata ("boot":"kernel")
#   build/images/batu-demo-bios.qcow2  MBR disk: FAT partition with SYSLINUX + kernel + initrd, ext4 root
#   build/images/batu-demo-bios.json   metadata ("boot":"disk")
# Needs root (for mknod and file ownership) and scripts/install-system-packages.sh.
# Cached: skipped when build/images/.demo-recipe-hash matches the hash of images/demo/
# and all outputs exist. `--force` (or BATU_DEMO_FORCE=1) rebuilds anyway.
# The kernel .deb is downloaded once into build/cache/demo/ (apt-get download; not installed).
set -euo pipefail

RECIPE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$RECIPE/../.." && pwd)"
OUT="$REPO/build/images"
CACHE="$REPO/build/cache/demo"
WORK="$REPO/build/work/demo"
NAME=batu-demo
READY_MARKER=BATU-READY
CMDLINE="console=ttyS0 root=/dev/vda rw quiet"
ROOTFS_MB=256        # ext4 root filesystem size (grown online to the disk at boot)
EPOCH=1700000000     # fixed mtime for initrd entries (reproducible cpio)

FORCE=${BATU_DEMO_FORCE:-0}
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

log() { echo "[demo-image] $*" >&2; }
die() { echo "[demo-image] error: $*" >&2; exit 1; }

OUTPUTS=("$NAME.qcow2" "$NAME.vmlinuz" "$NAME.initrd" "$NAME.json" "$NAME-bios.qcow2" "$NAME-bios.json")

mkdir -p "$OUT" "$CACHE"
# One build at a time (tests may call this script concurrently).
exec 9>"$OUT/.demo-build.lock"
flock 9

recipe_hash() {
  (cd "$RECIPE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
HASH="$(recipe_hash)"

if [ "$FORCE" != 1 ] && [ -f "$OUT/.demo-recipe-hash" ] && [ "$(cat "$OUT/.demo-recipe-hash")" = "$HASH" ]; then
  all=1
  for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || all=0; done
  if [ "$all" = 1 ]; then
    log "up to date (recipe $HASH)"
    exit 0
  fi
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (mknod, file ownership in the images)"
for tool in busybox mkfs.ext4 qemu-img cpio gzip depmod modprobe dpkg apt-get apt-cache mformat mcopy syslinux dropbear dropbearkey resize2fs; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
    die "missing $tool: run scripts/install-system-packages.sh"
done
BUSYBOX="$(command -v busybox)"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (install busybox-static)"
MBR_BIN=/usr/lib/SYSLINUX/mbr.bin
[ -f "$MBR_BIN" ] || MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$MBR_BIN" ] || die "SYSLINUX mbr.bin not found (package syslinux)"

start=$(date +%s.%N)

# --- kernel ----------------------------------------------------------------------------
# The version linux-image-cloud-amd64 points to, e.g. linux-image-6.1.0-56-cloud-amd64.
resolve_kernel_pkg() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9].*-cloud-amd64/ { print $2; exit }'
}
KPKG="$(resolve_kernel_pkg || true)"
if [ -z "$KPKG" ]; then
  log "apt metadata lacks linux-image-cloud-amd64: running apt-get update"
  apt-get update -qq >/dev/null 2>&1 || true
  KPKG="$(resolve_kernel_pkg || true)"
fi
if [ -z "$KPKG" ]; then
  # Offline: fall back to the newest kernel already in the cache.
  KPKG="$(ls -1d "$CACHE"/kernel-linux-image-*-cloud-amd64 2>/dev/null | sed 's|.*/kernel-||' | sort -V | tail -n1 || true)"
  [ -n "$KPKG" ] || die "cannot resolve linux-image-cloud-amd64 (no apt metadata, nothing cached)"
  log "apt cannot resolve the cloud kernel: using cached $KPKG"
fi
KVER="${KPKG#linux-image-}"
KDIR="$CACHE/kernel-$KPKG"
if [ ! -f "$KDIR/.complete" ]; then
  deb="$(ls -1 "$CACHE/${KPKG}_"*_amd64.deb 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$deb" ]; then
    log "downloading $KPKG"
    (cd "$CACHE" && apt-get download -q -o APT::Sandbox::User=root "$KPKG" >/dev/null) ||
      die "apt-get download $KPKG failed"
    deb="$(ls -1 "$CACHE/${KPKG}_"*_amd64.deb | sort -V | tail -n1)"
  fi
  log "extracting $(basename "$deb")"
  rm -rf "$KDIR" "$KDIR.tmp"
  mkdir -p "$KDIR.tmp"
  dpkg -x "$deb" "$KDIR.tmp"
  if [ -d "$KDIR.tmp/lib/modules/$KVER" ]; then depmod -b "$KDIR.tmp" "$KVER"; else depmod -b "$KDIR.tmp/usr" "$KVER"; fi
  touch "$KDIR.tmp/.complete"
  mv "$KDIR.tmp" "$KDIR"
  # Keep only this kernel in the cache.
  for old in "$CACHE"/kernel-linux-image-* "$CACHE"/linux-image-*.deb; do
    case "$old" in "$KDIR"|"$CACHE/${KPKG}_"*) ;; *) if [ -e "$old" ]; then rm -rf "$old"; fi ;; esac
  done
fi
VMLINUZ="$KDIR/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || die "no vmlinuz in $KDIR"
# usrmerge-style packages put modules under usr/lib/modules.
if [ -d "$KDIR/lib/modules/$KVER" ]; then KMODS="$KDIR/lib/modules/$KVER"; else KMODS="$KDIR/usr/lib/modules/$KVER"; fi
KBASE="${KMODS%/lib/modules/$KVER}"
log "kernel $KVER"

rm -rf "$WORK"
mkdir -p "$WORK"

# --- helpers -------------------------------------------------------------------------------
# module_list FILE...: module names (comments and blank lines dropped).
module_list() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$@" | grep -v '^$' || true; }

# install_modules DESTROOT NAME...: copy the modules and their dependencies, then depmod.
install_modules() {
  local dest="$1"; shift
  local m line f
  mkdir -p "$dest/lib/modules/$KVER"
  for m in "$@"; do
    if ! deps="$(modprobe -d "$KBASE" -S "$KVER" --show-depends "$m" 2>/dev/null)"; then
      log "warning: kernel $KVER has no module $m (skipped)"
      continue
    fi
    while read -r line; do
      case "$line" in
        insmod\ *)
          f="${line#insmod }"; f="${f%% *}"
          rel="${f#"$KMODS"/}"
          mkdir -p "$dest/lib/modules/$KVER/$(dirname "$rel")"
          [ -e "$dest/lib/modules/$KVER/$rel" ] || cp "$f" "$dest/lib/modules/$KVER/$rel"
          ;;
      esac
    done <<<"$deps"
  done
  for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "$KMODS/$f" ] && cp "$KMODS/$f" "$dest/lib/modules/$KVER/"
  done
  depmod -b "$dest" "$KVER"
}

# install_busybox DESTROOT: the static busybox and one symlink per applet.
install_busybox() {
  local dest="$1" p
  mkdir -p "$dest/bin" "$dest/sbin" "$dest/usr/bin" "$dest/usr/sbin"
  cp "$BUSYBOX" "$dest/bin/busybox"
  while read -r p; do
    [ -n "$p" ] && [ "$p" != bin/busybox ] && [ ! -e "$dest/$p" ] && ln -s /bin/busybox "$dest/$p"
  done < <("$BUSYBOX" --list-full)
}

# install_elf DESTROOT BINARY GUESTPATH: copy a dynamically linked binary to GUESTPATH and
# its libraries (from ldd) to the same paths as on the host.
install_elf() {
  local dest="$1" bin="$2" to="$3" lib
  mkdir -p "$dest/$(dirname "$to")"
  cp -L "$bin" "$dest/$to"
  ldd "$bin" | grep -q 'not found' && die "$bin: missing shared libraries"
  while read -r lib; do
    [ -n "$lib" ] || continue
    mkdir -p "$dest/$(dirname "$lib")"
    [ -e "$dest/$lib" ] || cp -L "$lib" "$dest/$lib"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

# --- root filesystem ----------------------------------------------------------------------
ROOT="$WORK/rootfs"
mkdir -p "$ROOT"/{proc,sys,dev,run,tmp,mnt,root,www,etc,var/log,var/tmp,lib}
ln -s /run "$ROOT/var/run"
install_busybox "$ROOT"
cp -a "$RECIPE/rootfs/." "$ROOT/"
install_modules "$ROOT" $(module_list "$RECIPE/initrd/etc/modules" "$RECIPE/rootfs/etc/modules")
tool_path() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || echo "/sbin/$1"; }
install_elf "$ROOT" "$(tool_path dropbear)" /usr/sbin/dropbear
install_elf "$ROOT" "$(tool_path dropbearkey)" /usr/bin/dropbearkey
install_elf "$ROOT" "$(tool_path resize2fs)" /sbin/resize2fs
mkdir -p "$ROOT/etc/dropbear"
chmod 755 "$ROOT/init" "$ROOT/etc/acpi/PWRF/00000080" "$ROOT/usr/share/udhcpc/default.script"
chmod 700 "$ROOT/root"
chmod 600 "$ROOT/etc/shadow"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chown -R 0:0 "$ROOT"

ROOT_IMG="$WORK/rootfs.ext4"
mkfs.ext4 -q -F -L batu-root -b 4096 -I 256 -m 0 -d "$ROOT" "$ROOT_IMG" "${ROOTFS_MB}M" >/dev/null
qemu-img convert -f raw -O qcow2 "$ROOT_IMG" "$WORK/$NAME.qcow2"

# --- initramfs ------------------------------------------------------------------------------
INITRD="$WORK/initrd"
mkdir -p "$INITRD"/{proc,sys,dev,newroot,etc}
install_busybox "$INITRD"
cp "$RECIPE/initrd/init" "$INITRD/init"
cp "$RECIPE/initrd/etc/modules" "$INITRD/etc/modules"
chmod 755 "$INITRD/init"
install_modules "$INITRD" $(module_list "$RECIPE/initrd/etc/modules")
# The kernel opens /dev/console before running /init (init re-opens it after mounting
# devtmpfs, so a build without mknod rights still boots, with a kernel warning).
mknod -m 600 "$INITRD/dev/console" c 5 1 2>/dev/null || log "warning: mknod failed: no /dev/console in the initrd"
mknod -m 666 "$INITRD/dev/null" c 1 3 2>/dev/null || true
find "$INITRD" -exec touch -h -d "@$EPOCH" {} +
(cd "$INITRD" && find . -print0 | LC_ALL=C sort -z |
  cpio --null -o -H newc -R 0:0 --quiet | gzip -9 -n) > "$WORK/$NAME.initrd"
cp "$VMLINUZ" "$WORK/$NAME.vmlinuz"

OS="Debian $KVER + busybox"
cat > "$WORK/$NAME.json" <<EOF
{"name":"$NAME.qcow2","format":"qcow2","boot":"kernel","kernel":"$NAME.vmlinuz","initrd":"$NAME.initrd","cmdline":"$CMDLINE","os":"$OS","ready_marker":"$READY_MARKER","login_user":"root"}
EOF

# --- BIOS-bootable disk: MBR + FAT (SYSLINUX, kernel, initrd) + ext4 root ------------------------
# No loop devices or mounts: mtools writes the FAT image, syslinux (mtools flavour) installs
# into it, and the partitions are assembled with dd.
SECTOR=512
P1_START=2048                                           # 1 MiB alignment
kib() { echo $(( ($(stat -c %s "$1") + 1023) / 1024 )); }
boot_mb=$(( ( $(kib "$VMLINUZ") + $(kib "$WORK/$NAME.initrd") ) / 1024 + 8 ))
[ "$boot_mb" -ge 16 ] || boot_mb=16
P1_SECTORS=$(( boot_mb * 2048 ))
P2_START=$(( P1_START + P1_SECTORS ))
P2_SECTORS=$(( $(stat -c %s "$ROOT_IMG") / SECTOR ))
DISK_SECTORS=$(( P2_START + P2_SECTORS ))

FAT="$WORK/boot.fat"
truncate -s $(( P1_SECTORS * SECTOR )) "$FAT"
export MTOOLS_SKIP_CHECK=1
mformat -i "$FAT" -T "$P1_SECTORS" -h 64 -s 32 -H "$P1_START" -v BATUBOOT ::
mcopy -i "$FAT" "$VMLINUZ" ::/vmlinuz
mcopy -i "$FAT" "$WORK/$NAME.initrd" ::/initrd
mcopy -i "$FAT" "$RECIPE/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$FAT"

# le32 N: four little-endian bytes as printf escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(( $1 & 255 )) $(( ($1 >> 8) & 255 )) $(( ($1 >> 16) & 255 )) $(( ($1 >> 24) & 255 )); }
# part_entry BOOTFLAG TYPE START SECTORS: a 16-byte MBR partition entry (CHS fields maxed: LBA only).
part_entry() { printf "\\x$1\\xfe\\xff\\xff\\x$2\\xfe\\xff\\xff$(le32 "$3")$(le32 "$4")"; }

DISK="$WORK/bios.raw"
truncate -s $(( DISK_SECTORS * SECTOR )) "$DISK"
dd if="$MBR_BIN" of="$DISK" bs=440 count=1 conv=notrunc status=none
{
  part_entry 80 0e "$P1_START" "$P1_SECTORS"   # FAT16 (LBA), active
  part_entry 00 83 "$P2_START" "$P2_SECTORS"   # Linux
  head -c 32 /dev/zero
  printf '\x55\xaa'
} | dd of="$DISK" bs=1 seek=446 conv=notrunc status=none
dd if="$FAT" of="$DISK" bs=1M seek=$(( P1_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$ROOT_IMG" of="$DISK" bs=1M seek=$(( P2_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 "$DISK" "$WORK/$NAME-bios.qcow2"
cat > "$WORK/$NAME-bios.json" <<EOF
{"name":"$NAME-bios.qcow2","format":"qcow2","boot":"disk","os":"$OS","ready_marker":"$READY_MARKER","login_user":"root"}
EOF

# --- publish --------------------------------------------------------------------------------
# Note: replacing a base image invalidates qcow2 overlays made on the old one.
rm -f "$OUT/.demo-recipe-hash"
for f in "${OUTPUTS[@]}"; do mv -f "$WORK/$f" "$OUT/$f"; done
echo "$HASH" > "$OUT/.demo-recipe-hash"
rm -rf "$WORK"

end=$(date +%s.%N)
log "built in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s:"
for f in "${OUTPUTS[@]}"; do
  log "  $(printf '%-22s %8s' "$f" "$(du -h --apparent-size "$OUT/$f" | cut -f1)")"
done
