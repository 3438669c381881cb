#!/usr/bin/env bash
# The main job: build shoal (Release), start a 5-node cluster on 127.0.0.1, and show it working:
# the nodes find each other by multicast on loopback, node3 registers a global name that every
# node learns, node3 is killed with SIGKILL and the others declare it failed and drop its name,
# one node leaves gracefully, then everything stops. Ends with the replicated-map
# benchmark. Every node's log stays in out/demo/.
#
#   SHOAL_DEMO_PORT=7946 scripts/run.sh    (first of 5 consecutive ports; the default)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target shoal crdt_bench

base=${SHOAL_DEMO_PORT:-7946}
group="239.255.77.46:$((base + 100))"
logs=out/demo
rm -rf "$logs" && mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ms() { date +%s%3N; }
# wait_for LOG PATTERN TIMEOUT_S: waits until LOG has a line matching PATTERN.
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  until grep -q -- "$2" "$1" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for '$2' in $1" >&2; return 1; fi
    sleep 0.01
  done
}

echo "== starting 5 agents on 127.0.0.1:$base..$((base + 4)) (multicast discovery, group $group)"
start=$(ms)
for i in 1 2 3 4 5; do
  ./build/release/bin/shoal agent --name "node$i" --bind "127.0.0.1:$((base + i - 1))" \
    --multicast-group "$group" --tag "role=demo" $( [ "$i" = 3 ] && echo --register payments ) \
    2> "$logs/node$i.log" &
  pids+=($!)
done
for i in 1 2 3 4 5; do
  for j in 1 2 3 4 5; do
    [ "$i" = "$j" ] || wait_for "$logs/node$i.log" "joined name=node$j " 20
  done
done
echo "every node sees all 5 alive after $(( $(ms) - start )) ms"
for i in 1 2 4 5; do wait_for "$logs/node$i.log" "registry registered name=payments " 20; done
echo "the global name 'payments' (registered by node3) is known on every node:"
grep -h "registry registered name=payments " "$logs/node1.log"
echo
echo "-- node1's log so far:"
cat "$logs/node1.log"
echo

echo "== kill -9 node3"
killed=$(ms)
kill -9 "${pids[2]}"
for i in 1 2 4 5; do wait_for "$logs/node$i.log" "failed name=node3 " 20; done
echo "all 4 survivors declared node3 failed within $(( $(ms) - killed )) ms"
grep -h "failed name=node3 " "$logs"/node{1,2,4,5}.log
for i in 1 2 4 5; do wait_for "$logs/node$i.log" "registry unregistered name=payments " 20; done
echo "its name 'payments' is gone on every survivor $(( $(ms) - killed )) ms after the kill:"
grep -h "registry unregistered name=payments \|registry purged" "$logs"/node{1,2,4,5}.log
echo

echo "== node5 leaves gracefully (SIGTERM)"
left=$(ms)
kill -TERM "${pids[4]}"
for i in 1 2 4; do wait_for "$logs/node$i.log" "left name=node5 " 20; done
echo "node1, node2, node4 saw node5 leave within $(( $(ms) - left )) ms"
wait "${pids[4]}" && echo "node5 exited with status 0"
echo

echo "== stopping the rest"
for i in 0 1 3; do kill -TERM "${pids[$i]}"; done
for i in 0 1 3; do wait "${pids[$i]}" || true; done
tail -n 1 "$logs/node1.log"
echo

echo "== replicated-map benchmark (bench/crdt_bench)"
mkdir -p out
./build/release/bench/crdt_bench --json out/crdt_bench.json "$@"
