#!/usr/bin/env bash
# Soak benchmark: builds shoal (Release) and runs bench/soak/soak.py: 10 agents on 127.0.0.1, one
# killed (-9) and restarted every 6 s for 10 minutes. Writes out/soak.json; prints the headline
# last. Arguments go to soak.py (e.g. --duration 60 for a short run).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSHOAL_WERROR=ON >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target shoal >/dev/null
exec /usr/bin/python3 bench/soak/soak.py --shoal build/release/bin/shoal "$@"
