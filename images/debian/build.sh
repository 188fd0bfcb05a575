#!/usr/bin/env bash
# Builds the Debian 12 (bookworm) cloud guest "debian-12" with mmdebstrap from this machine's
# configured apt mirror:
#   build/images/debian-12.qcow2    ext4 root filesystem on the whole disk (/dev/vda), compressed;
#                                   cloud-init grows it to the disk at every boot
#   build/images/debian-12.vmlinuz  the image's own kernel (linux-image-cloud-amd64)
#   build/images/debian-12.initrd   the image's own initramfs (initramfs-tools, virtio modules only)
#   build/images/debian-12.json     metadata ("boot":"kernel", "cloud_init":true)
# The guest is configured by a NoCloud seed (src/storage/cloud-init-seed.ts) and sends nothing off
# the host: no network data sources, no NTP, no apt timers or package mirrors at boot.
# Needs root and scripts/install-system-packages.sh (mmdebstrap, e2fsprogs, qemu-utils).
# Cached: skipped when build/images/.debian-recipe-hash matches the hash of images/debian/
# and all outputs exist. `--force` (or BATU_DEBIAN_FORCE=1) rebuilds anyway.
# The .debs are kept in build/cache/debian/ so a rebuild downloads only what changed.
set -euo pipefail

RECIPE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$RECIPE/../.." && pwd)"
OUT="$REPO/build/images"
CACHE="$REPO/build/cache/debian"
WORK="$REPO/build/work/debian"
NAME=debian-12
SUITE=bookworm
READY_MARKER=BATU-READY
LOGIN_USER=dbc       # DBC's default Linux user_name; the seed gives it the task's password
# net.ifnames=0: the one NIC is eth0 wherever batu puts it on the PCI bus (the seed names it).
CMDLINE="console=ttyS0 root=/dev/vda rw quiet net.ifnames=0"
DISK_MB=2048         # virtual size of the image; the root filesystem grows with the disk

FORCE=${BATU_DEBIAN_FORCE:-0}
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

log() { echo "[debian-image] $*" >&2; }
die() { echo "[debian-image] error: $*" >&2; exit 1; }

OUTPUTS=("$NAME.qcow2" "$NAME.vmlinuz" "$NAME.initrd" "$NAME.json")

mkdir -p "$OUT" "$CACHE"
# One build at a time (tests may call this script concurrently).
exec 9>"$OUT/.debian-build.lock"
flock 9

recipe_hash() {
  (cd "$RECIPE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
HASH="$(recipe_hash)"

if [ "$FORCE" != 1 ] && [ -f "$OUT/.debian-recipe-hash" ] && [ "$(cat "$OUT/.debian-recipe-hash")" = "$HASH" ]; then
  all=1
  for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || all=0; done
  if [ "$all" = 1 ]; then
    log "up to date (recipe $HASH)"
    exit 0
  fi
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap root mode, file ownership in the image)"
for tool in mmdebstrap mkfs.ext4 qemu-img; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ] ||
    die "missing $tool: run scripts/install-system-packages.sh"
done

start=$(date +%s.%N)
rm -rf "$WORK"
mkdir -p "$WORK"

# --- sources: the host's own apt sources (its mirror, updates and security suites) ------------
SOURCES="$WORK/sources"
: > "$SOURCES"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] || continue
  case "$f" in
    *.sources) cat "$f" >> "$SOURCES"; echo >> "$SOURCES" ;;
    *) grep -E '^[[:space:]]*deb[[:space:]]' "$f" >> "$SOURCES" || true ;;
  esac
done
# A deb822 file and one-line entries cannot share a file: keep the deb822 form when present.
if grep -q '^Types:' "$SOURCES" && grep -qE '^[[:space:]]*deb[[:space:]]' "$SOURCES"; then
  grep -vE '^[[:space:]]*deb[[:space:]]' "$SOURCES" > "$SOURCES.822" && mv "$SOURCES.822" "$SOURCES"
fi
MIRROR_ARGS=()
if [ -s "$SOURCES" ]; then
  mv "$SOURCES" "$SOURCES$(grep -q '^Types:' "$SOURCES" && echo .sources || echo .list)"
  MIRROR_ARGS=("$(ls "$SOURCES".*)")
else
  log "no apt sources on this host: using mmdebstrap's default mirror"
fi

PACKAGES=(
  linux-image-cloud-amd64 initramfs-tools zstd
  systemd-sysv udev dbus
  cloud-init openssh-server qemu-guest-agent sudo
  # DHCP on the virtio NIC: cloud-init renders the seed's network-config for systemd-networkd
  iproute2
)

# --- root filesystem ------------------------------------------------------------------------
ROOT="$WORK/rootfs"
log "mmdebstrap $SUITE (${#PACKAGES[@]} packages and their dependencies)"
# Hooks run on the host with the chroot as $1. The overlay goes in before the packages so the
# kernel's initramfs is built once, with batu's initramfs settings.
mmdebstrap \
  --mode=root --variant=minbase --format=directory \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --aptopt='Apt::Install-Recommends "false"' \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
  --setup-hook="find '$CACHE' -maxdepth 1 -name '*.deb' -exec cp -t \"\$1/var/cache/apt/archives/\" {} +" \
  --setup-hook="cp -a '$RECIPE/overlay/.' \"\$1/\"" \
  --customize-hook="rm -f '$CACHE'/*.deb && find \"\$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' -exec cp -t '$CACHE/' {} +" \
  --customize-hook="'$RECIPE/customize.sh' \"\$1\"" \
  "$SUITE" "$ROOT" "${MIRROR_ARGS[@]}" 2>&1 | sed -u 's/^/[debian-image]   /' >&2
[ "${PIPESTATUS[0]}" -eq 0 ] || die "mmdebstrap failed"

# --- kernel and initramfs: the image's own ------------------------------------------------------
VMLINUZ="$(ls -1 "$ROOT"/boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n1)"
KVER="${VMLINUZ##*/vmlinuz-}"
[ -s "$ROOT/boot/initrd.img-$KVER" ] || die "no initramfs for $KVER in the image"
cp "$VMLINUZ" "$WORK/$NAME.vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/$NAME.initrd"
log "kernel $KVER"

# --- disk -----------------------------------------------------------------------------------------
ROOT_IMG="$WORK/rootfs.ext4"
used_mb=$(( $(du -sxm "$ROOT" | cut -f1) ))
[ "$used_mb" -lt $(( DISK_MB * 3 / 4 )) ] || die "root filesystem ($used_mb MiB) too big for $DISK_MB MiB"
mkfs.ext4 -q -F -L batu-root -b 4096 -I 256 -m 0 -E lazy_itable_init=0 -d "$ROOT" "$ROOT_IMG" "${DISK_MB}M" >/dev/null
qemu-img convert -c -f raw -O qcow2 -o cluster_size=65536 "$ROOT_IMG" "$WORK/$NAME.qcow2"

OS="Debian $(cat "$ROOT/etc/debian_version") (bookworm, $KVER, cloud-init)"
cat > "$WORK/$NAME.json" <<EOF
{"name":"$NAME.qcow2","format":"qcow2","boot":"kernel","kernel":"$NAME.vmlinuz","initrd":"$NAME.initrd","cmdline":"$CMDLINE","os":"$OS","ready_marker":"$READY_MARKER","login_user":"$LOGIN_USER","cloud_init":true}
EOF

# --- publish --------------------------------------------------------------------------------
# Note: replacing a base image invalidates qcow2 overlays made on the old one.
rm -f "$OUT/.debian-recipe-hash"
for f in "${OUTPUTS[@]}"; do mv -f "$WORK/$f" "$OUT/$f"; done
echo "$HASH" > "$OUT/.debian-recipe-hash"
rm -rf "$WORK"

end=$(date +%s.%N)
log "built in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s (root filesystem $used_mb MiB):"
for f in "${OUTPUTS[@]}"; do
  log "  $(printf '%-22s %8s' "$f" "$(du -h --apparent-size "$OUT/$f" | cut -f1)")"
done
