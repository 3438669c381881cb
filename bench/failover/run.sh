#!/usr/bin/env bash
# The failover benchmark, end to end: builds shoal and the driver (Release), runs every scenario
# (or a quick subset), writes out/failover_bench.json and draws out/timeline.png and
# out/scaling.png. Installs what is missing (python3-matplotlib for the plots) with apt-get.
#
#   bench/failover/run.sh            the whole suite, 5 rounds each (about 8 minutes on 2 cores)
#   bench/failover/run.sh --quick    three small scenarios, 2 rounds (about 15 s)
#   bench/failover/run.sh --rounds 10 --only kill-n5-m10000
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/deps.sh
# Debian's python3 (where apt installs matplotlib), even when another python3 comes first in PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
  as_root=()
  [ "$(id -u)" -ne 0 ] && as_root=(sudo)
  echo "installing python3-matplotlib (for the plots)" >&2
  { "${as_root[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
      python3-matplotlib >/dev/null; } || echo "(python3-matplotlib not installed: no plots)" >&2
fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target shoal failover_bench
mkdir -p out
# The plots are drawn even when a check failed (the benchmark then exits 1, and so does this).
status=0
./build/release/bench/failover_bench --json out/failover_bench.json "$@" || status=$?
[ -s out/failover_bench.json ] && "$py" bench/failover/plot.py out/failover_bench.json
exit "$status"
