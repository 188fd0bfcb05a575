#!/usr/bin/env bash
# Prints batu-agent.service for the checkout at <root>, run by the node at <node> (absolute paths).
# Usage: scripts/systemd-unit.sh [<root>] [<node>]   (default: this checkout, `command -v node`)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="${1:-$here}"
node="${2:-$(command -v node)}"
for p in "$root" "$node"; do
  case "$p" in
    /*) ;;
    *) echo "systemd-unit.sh: not an absolute path: $p" >&2; exit 2 ;;
  esac
  # sed's replacement and systemd's parser: no character that either would read as syntax.
  if [[ "$p" =~ [^A-Za-z0-9/._+-] ]]; then
    echo "systemd-unit.sh: a path with characters a unit file cannot hold as is: $p" >&2
    exit 2
  fi
done
sed -e "s|@ROOT@|$root|g" -e "s|@NODE@|$node|g" "$here/deploy/systemd/batu-agent.service"
