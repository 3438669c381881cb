#!/usr/bin/env bash
# ctest's entry for tests/packaging/check_packaging.py: gets a promtool (scripts/promtool.sh) and
# checks packaging/ against the agent binary given as $1.
set -euo pipefail
here="$(dirname "$0")"
promtool=$(bash "$here/../../scripts/promtool.sh")
exec python3 "$here/check_packaging.py" "$1" "$promtool"
