#!/usr/bin/env bash
# Boots build/images/debian-12.qcow2 once with plain QEMU (not batu's agent) under TCG, with a
# NoCloud seed from src/storage/cloud-init-seed.ts, and checks what a renter relies on:
# the ready marker on the serial console, an SSH password login as the seed's user (sudo, host
# name, root grown to the disk) and the guest agent answering guest-sync. The guest's user
# network is restrict=on: nothing it sends leaves the host.
# Runs under `flock /tmp/batu-qemu.lock` (one QEMU boot at a time on the machine).
# Usage: scripts/smoke-debian-image.sh [--keep]   (--keep: leave the work dir for inspection)
#        SMOKE_USER=root scripts/smoke-debian-image.sh   (the seed's user is root)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="$REPO/build/images"
LOCK=/tmp/batu-qemu.lock
if [ "${BATU_SMOKE_LOCKED:-}" != 1 ]; then
  BATU_SMOKE_LOCKED=1 exec flock "$LOCK" "$0" "$@"
fi
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1

READY_TIMEOUT_S=${READY_TIMEOUT_S:-900}
USER_NAME=${SMOKE_USER:-dbc}   # SMOKE_USER=root checks a root login instead
# A DBC-style password: letters, digits and _/+[]@#^.
PASSWORD="Ab3_/+[]@#^xYz9q"
HOSTNAME_=smoke-debian
MAC=52:54:00:12:34:56
DISK_SIZE=4G

log() { echo "[smoke] $*" >&2; }
die() { echo "[smoke] FAIL: $*" >&2; exit 1; }

for f in debian-12.qcow2 debian-12.vmlinuz debian-12.initrd debian-12.json; do
  [ -s "$IMAGES/$f" ] || die "missing $IMAGES/$f: run images/debian/build.sh"
done
CMDLINE="$(jq -r .cmdline "$IMAGES/debian-12.json")"
MARKER="$(jq -r .ready_marker "$IMAGES/debian-12.json")"

WORK="$(mktemp -d /tmp/batu-smoke-debian.XXXXXX)"
QEMU_PID=
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N "" -C smoke@host -f "$WORK/id_ed25519"
qemu-img create -q -f qcow2 -b "$IMAGES/debian-12.qcow2" -F qcow2 "$WORK/disk.qcow2" "$DISK_SIZE"
(cd "$REPO" && node --import tsx --input-type=module -e '
  const { writeNoCloudSeed } = await import("./src/storage/cloud-init-seed.ts");
  await writeNoCloudSeed(process.argv[1], JSON.parse(process.argv[2]));
' "$WORK/seed.img" "$(jq -cn --arg u "$USER_NAME" --arg p "$PASSWORD" --arg h "$HOSTNAME_" --arg m "$MAC" \
  --arg k "$(cat "$WORK/id_ed25519.pub")" \
  '{instanceId: "smoke-1", hostname: $h, user: $u, password: $p, macAddress: $m, sshAuthorizedKeys: [$k]}')")

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log "booting under TCG (ssh on 127.0.0.1:$PORT)"
start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 1024 \
  -display none -monitor none -serial "file:$WORK/console.log" \
  -kernel "$IMAGES/debian-12.vmlinuz" -initrd "$IMAGES/debian-12.initrd" -append "$CMDLINE" \
  -drive "if=virtio,format=qcow2,file=$WORK/disk.qcow2" \
  -drive "if=virtio,format=raw,file=$WORK/seed.img,readonly=on" \
  -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22" \
  -device "virtio-net-pci,netdev=n0,mac=$MAC" \
  -chardev "socket,id=qga0,path=$WORK/qga.sock,server=on,wait=off" \
  -device virtio-serial -device "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0" \
  -pidfile "$WORK/qemu.pid" &
QEMU_PID=$!

elapsed() { awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }"; }
while ! grep -q "^$MARKER" "$WORK/console.log" 2>/dev/null; do
  kill -0 "$QEMU_PID" 2>/dev/null || { tail -n 40 "$WORK/console.log" >&2 || true; die "QEMU exited before $MARKER"; }
  if awk "BEGIN { exit !($(elapsed) > $READY_TIMEOUT_S) }"; then
    tail -n 40 "$WORK/console.log" >&2 || true
    die "no $MARKER within $READY_TIMEOUT_S s"
  fi
  sleep 0.5
done
READY_S=$(elapsed)
log "$MARKER on ttyS0 after $READY_S s"

SSH=(sshpass -e ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o PreferredAuthentications=password -o PubkeyAuthentication=no -o ConnectTimeout=30 -p "$PORT")
export SSHPASS="$PASSWORD"
"${SSH[@]}" "$USER_NAME@127.0.0.1" true || die "ssh password login as $USER_NAME failed"
log "ssh password login as $USER_NAME: ok"
# What the guest says about itself (BATU_SMOKE_PROFILE=1 adds where its boot time goes).
REPORT=$(cat <<'EOF2'
echo "hostname: $(hostname)"; echo "id: $(id)"
sudo -n true && echo "sudo: ok"
echo "root fs: $(df -h --output=size / | tail -n1 | tr -d ' ') of a $DISK_SIZE disk"
echo "eth0: $(ip -4 -o addr show eth0 | awk '{print $4}')"
echo "cloud-init: $(cloud-init status 2>&1 | tr '\n' ' ')"
echo "datasources: $(sudo sed -n 's/^DSLIST=//p' /run/cloud-init/ds-identify.log | tail -n1)"
echo "active timers: $(systemctl list-timers --no-legend | grep -o '[^ ]*\.timer' | tr '\n' ' ')"
echo "masked: $(systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer systemd-timesyncd.service 2>&1 | tr '\n' ' ')"
echo "resolv.conf: $(grep -v '^#' /etc/resolv.conf | tr '\n' ' ')"
echo "failed units: $(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
echo "system state: $(systemctl is-system-running)"
systemd-analyze | head -n1
if [ "$PROFILE" = 1 ]; then
  systemd-analyze blame | head -n 20
  systemd-analyze critical-chain batu-ready.service
fi
EOF2
)
"${SSH[@]}" "$USER_NAME@127.0.0.1" "PROFILE='${BATU_SMOKE_PROFILE:-}' DISK_SIZE='$DISK_SIZE'; $REPORT" >&2 ||
  die "commands over ssh failed"
ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
  -o PreferredAuthentications=publickey -i "$WORK/id_ed25519" -p "$PORT" "$USER_NAME@127.0.0.1" true ||
  die "ssh key login as $USER_NAME failed"
log "ssh key login as $USER_NAME: ok"
if [ "$USER_NAME" != root ]; then
  if "${SSH[@]}" "root@127.0.0.1" true 2>/dev/null; then die "root logged in with the user's password"; fi
  log "root ssh login refused: ok"
fi

QGA_REPLY=$(python3 - "$WORK/qga.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(b'{"execute":"guest-sync","arguments":{"id":1}}\n')
buf = b""
while b"\n" not in buf:
    buf += s.recv(4096)
print(buf.decode().strip())
EOF
)
[ "$(echo "$QGA_REPLY" | jq -c .)" = '{"return":1}' ] || die "guest-sync answered $QGA_REPLY"
log "qemu-guest-agent guest-sync: $QGA_REPLY"
log "PASS: ready after $READY_S s under TCG"
