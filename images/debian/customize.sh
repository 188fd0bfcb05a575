#!/usr/bin/env bash
# mmdebstrap customize hook for the debian-12 image: runs on the host after the packages are
# installed, with the image's root directory as $1 (chroot commands run inside it).
set -euo pipefail
ROOT="$1"
in_root() { chroot "$ROOT" "$@"; }

# Nothing at boot talks to anything but the host: no clocks from the network, no apt timers,
# and units this guest has no use for masked (each one is boot time under TCG emulation).
in_root systemctl mask \
  systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
  dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  man-db.timer logrotate.timer \
  systemd-pstore.service \
  cloud-init-hotplugd.socket
in_root systemctl enable systemd-networkd.service batu-ready.service

# The root filesystem is the whole virtio disk; the kernel command line mounts it read-write.
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n' > "$ROOT/etc/fstab"

# Per-instance identity is made at first boot: host keys by cloud-init's ssh module, the
# machine id by systemd (an empty file marks the first boot), the hostname from the seed.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: > "$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
echo debian > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
# mmdebstrap leaves the build host's resolver here; the guest must not know (or query) it.
rm -f "$ROOT/etc/resolv.conf"
echo "# No name servers: this guest is given none." > "$ROOT/etc/resolv.conf"

# Small image: no package lists or .debs (the build keeps its own copy of the .debs), and
# the build's apt options (no recommends, old Release dates) stay out of the guest.
rm -f "$ROOT/etc/apt/apt.conf.d/99mmdebstrap"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin
find "$ROOT/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -delete
rm -rf "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
