#!/usr/bin/env bash
# Builds shoal and runs every test: the Release build, then the AddressSanitizer + UBSan build.
# Installs missing Debian packages first. Exits non-zero on any failure.
#
#   scripts/test.sh            both builds
#   scripts/test.sh release    only the Release build (faster local loop)
#   scripts/test.sh sanitize   only the sanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
builds=("${@:-release sanitize}")
# shellcheck disable=SC2206
builds=(${builds[*]})

for build in "${builds[@]}"; do
  case "$build" in
    release) type=Release ;;
    sanitize) type=Sanitize ;;
    *) echo "test.sh: unknown build '$build' (release, sanitize)" >&2; exit 2 ;;
  esac
  dir="build/$build"
  echo "== $build: configure and build ($type) in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSHOAL_WERROR=ON \
        -DSHOAL_BUILD_BENCH=$([ "$build" = release ] && echo ON || echo OFF) >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $build: ctest"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The sanitizer build skips the "large" simulations (1,000 nodes: minutes under ASan) and the
  # fault lab (timing-bound scenarios with real agents; the fuzzers cover hostile input under the
  # sanitizers); the Release build runs both. Neither runs the "huge" ones (the 10,000-node
  # simulation: ctest -L huge).
  exclude=(-LE huge)
  [ "$build" = sanitize ] && exclude=(-LE 'large|fault|huge')
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${exclude[@]}"
done
