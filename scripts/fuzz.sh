#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang 16 in build/fuzz and runs each for a while on
# its corpus (fuzz/corpus/<target>/, plus what the run finds, kept in build/fuzz/corpus/).
# Installs clang-16 and its runtime libraries with apt-get if they are missing. Exits non-zero
# when a target crashes, leaks or trips a sanitizer; the input is left in build/fuzz/.
#
#   scripts/fuzz.sh                 every target, 60 s each, one per core at a time (CI)
#   scripts/fuzz.sh 600             every target, 10 minutes each
#   scripts/fuzz.sh 3600 rpc        one target, an hour
#   scripts/fuzz.sh --seeds         rewrite the seed inputs (seed-N) in fuzz/corpus/ from the targets
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in clang-16 libclang-rt-16-dev llvm-16; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -ne 0 ] && as_root=(sudo)
  echo "fuzz: installing ${missing[*]}" >&2
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
bash scripts/deps.sh

targets=(packet crdt replicator rpc store messaging http membership values config)
cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_FUZZ=ON -DSHOAL_WERROR=OFF \
  -DSHOAL_BUILD_TESTS=OFF -DSHOAL_BUILD_BENCH=OFF \
  -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 >/dev/null
cmake --build build/fuzz -j "$(nproc 2>/dev/null || echo 2)" \
  --target "${targets[@]/%/_fuzz}" >/dev/null

if [ "${1:-}" = "--seeds" ]; then
  for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"  # seed-N files are rewritten; the rest of the corpus stays
    SHOAL_FUZZ_SEEDS="fuzz/corpus/$t" "build/fuzz/fuzz/${t}_fuzz"
  done
  exit 0
fi

seconds=${1:-60}
[ $# -ge 2 ] && targets=("$2")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# One target per core at a time; each one's report is printed when it ends.
jobs=$(nproc 2>/dev/null || echo 2)
run_one() {
  local t=$1 work="build/fuzz/corpus/$1"
  mkdir -p "$work"
  # -rss_limit_mb bounds memory; -max_len is above every decoder's interesting size.
  ( cd build/fuzz && "./fuzz/${t}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 "../../$work" "../../fuzz/corpus/$t" 2>&1 |
      grep -E "DONE|==[0-9]+==ERROR|SUMMARY|stat::number_of_executed_units|stat::peak_rss_mb" )
}
declare -A pid_of
failed=()
finish() {
  local t=$1
  if wait "${pid_of[$t]}"; then echo "== fuzz $t for ${seconds}s"; else failed+=("$t"); echo "== fuzz $t for ${seconds}s: FAILED"; fi
  cat "build/fuzz/$t.log"
  unset "pid_of[$t]"
}
running=()
for t in "${targets[@]}"; do
  if [ ${#running[@]} -ge "$jobs" ]; then finish "${running[0]}"; running=("${running[@]:1}"); fi
  run_one "$t" > "build/fuzz/$t.log" 2>&1 &
  pid_of[$t]=$!
  running+=("$t")
done
for t in "${running[@]}"; do finish "$t"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} failed (the crashing input is in build/fuzz/)" >&2
  exit 1
fi
