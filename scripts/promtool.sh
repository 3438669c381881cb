#!/usr/bin/env bash
# Prints the path of a `promtool` (Prometheus's rule checker), fetching it when there is none:
# Debian's prometheus package is downloaded (apt-get download, no install: its maintainer scripts
# would start a server) and only its promtool is unpacked, into build/tools/. Exits non-zero if it
# cannot get one.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
tool=build/tools/prometheus/usr/bin/promtool
if [ ! -x "$tool" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ( cd "$work" && apt-get download prometheus >/dev/null 2>&1 ) || {
    apt-get update -qq >/dev/null 2>&1 || true
    ( cd "$work" && apt-get download prometheus >/dev/null )
  }
  mkdir -p build/tools
  dpkg -x "$work"/prometheus_*.deb build/tools/prometheus
fi
echo "$PWD/$tool"
