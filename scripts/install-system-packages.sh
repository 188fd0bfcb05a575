#!/usr/bin/env bash
# Installs the Debian packages batu needs. Idempotent: installs only what is missing.
# The one list of system packages; README set-up and .ci/run both call this script.
set -euo pipefail

PACKAGES=(
  # hypervisor and disks
  qemu-system-x86 qemu-utils ovmf
  # the demo guest image, built from Debian packages
  busybox-static e2fsprogs cpio kmod syslinux extlinux mtools dropbear-bin
  # the Debian 12 cloud guest image (images/debian/build.sh); its cloud-init seed is made with
  # mtools and read back in tests with PyYAML (cloud-init's own parser); sshpass for the
  # password logins of its boot check
  mmdebstrap python3-yaml sshpass
  # networking
  iproute2 nftables dnsmasq-base
  # load tool for bench/
  wrk
  # misc
  ca-certificates curl procps
  # DBC image servers are rsync daemons (src/image/rsync-source.ts), and its tests run one
  rsync
  # each node's self-signed TLS certificate, made at its agent's first start
  openssl
  # the docs' examples (run by test/docs-examples.test.ts)
  jq
  # the web console's browser test and its first-load bench (playwright-core drives it)
  chromium
  # group HA: the masters' shared state (etcd; the HA test starts its own cluster), etcdctl (an
  # operator's snapshots; the leadership test turns etcd's auth on with it), and the gratuitous ARP
  # that moves the group's service address to a new leader
  etcd-server etcd-client iputils-arping
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
