#!/usr/bin/env bash
# Everything a fresh machine (Debian 12, Node.js 20, root) needs to run batu, idempotent:
# system packages, npm packages, the build, the demo and Debian 12 VM images, and `batu` on the PATH.
# With --systemd, also the agent as a systemd service (batu-agent.service, enabled and started:
# docs/service.md); without it, nothing of systemd's is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

systemd=no
for arg in "$@"; do
  case "$arg" in
    --systemd) systemd=yes ;;
    *) echo "usage: $0 [--systemd]   (unknown: $arg)" >&2; exit 2 ;;
  esac
done

./scripts/install-system-packages.sh
# `npm install` (which follows package-lock.json) rather than `npm ci`: npm 11 on these machines writes
# lock files without the optional per-platform packages, then `npm ci` refuses them as out of sync.
npm install --no-audit --no-fund
npm run build
if [ -x images/demo/build.sh ]; then
  ./images/demo/build.sh
fi
if [ -x images/debian/build.sh ]; then
  ./images/debian/build.sh
fi
npm link --no-audit --no-fund >/dev/null
echo "batu is set up: $(command -v batu) ($(batu version))"

if [ "$systemd" = yes ]; then
  unit=/etc/systemd/system/batu-agent.service
  # Written whole, then renamed: systemd never reads half a unit.
  ./scripts/systemd-unit.sh "$(pwd)" "$(command -v node)" > "$unit.tmp"
  mv "$unit.tmp" "$unit"
  systemctl daemon-reload
  systemctl enable --now batu-agent.service
  echo "batu-agent.service is installed, enabled and started: systemctl status batu-agent; journalctl -u batu-agent -f"
fi
