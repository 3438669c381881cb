#!/usr/bin/env bash
# ctest's entry for tests/dashboard/run.py: runs it with a python3 that has the websocket module
# (Debian's python3-websocket installs into /usr/bin/python3's packages, which another python3
# first on PATH may not see). Without one, run.py itself says so and skips or fails.
set -euo pipefail
here="$(dirname "$0")"
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c "import websocket" 2>/dev/null; then
    exec "$py" "$here/run.py" "$@"
  fi
done
exec python3 "$here/run.py" "$@"
