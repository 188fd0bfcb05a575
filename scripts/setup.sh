#!/usr/bin/env bash
# Everything a fresh machine (Debian 12, Node.js 20, root) needs to run batu, idempotent:
# system packages, npm packages, the build, the demo and Debian 12 VM images, and `batu` on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

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
