#!/usr/bin/env bash
# The main job: build shoal in Release and show it working. Until the agent exists, it runs the
# replicated-map benchmark (bench/crdt_bench), which prints its figures and writes JSON.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target crdt_bench
mkdir -p out
./build/release/bench/crdt_bench --json out/crdt_bench.json "$@"
