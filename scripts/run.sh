#!/usr/bin/env bash
# The main job: build shoal (Release), start a 5-node cluster on 127.0.0.1, and show it working:
# the nodes find each other by multicast on loopback, node3 registers a global name that every
# node learns, node1 adds five supervised children (sleep processes) that spread over the nodes,
# node3 is killed with SIGKILL: the others declare it failed, drop its name, and restart its
# children (which died with it); node2 leaves gracefully and hands its children over; then
# everything stops. Ends with the replicated-map benchmark. Logs stay in out/demo/.
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
# The children are `sleep N` with N unique to this demo's ports, so they can be found by command.
job_arg() { echo $(( 9000000 + base % 10000 * 10 + $1 )); }
children=()
for k in 1 2 3 4 5; do children+=(--child "job$k=sleep $(job_arg "$k")"); done
for i in 1 2 3 4 5; do
  extra=()
  [ "$i" = 1 ] && extra=("${children[@]}")
  [ "$i" = 3 ] && extra=(--register payments)
  ./build/release/bin/shoal agent --name "node$i" --bind "127.0.0.1:$((base + i - 1))" \
    --multicast-group "$group" --tag "role=demo" --data-dir "$logs/data/node$i" "${extra[@]}" \
    2> "$logs/node$i.log" &
  pids+=($!)
done
# where_jobs: one line per live child process: name, OS pid, the agent it runs under.
where_jobs() {
  for k in 1 2 3 4 5; do
    for p in $(pgrep -x -f "sleep $(job_arg "$k")" || true); do
      local parent node=?
      parent=$(ps -o ppid= -p "$p" | tr -d ' ')
      for i in 1 2 3 4 5; do [ "${pids[$((i - 1))]}" = "$parent" ] && node="node$i"; done
      echo "  job$k  os_pid=$p  on $node"
    done
  done
}
# one_each [NODE_PID]: every child runs exactly once (and not under NODE_PID).
one_each() {
  for k in 1 2 3 4 5; do
    local found
    found=$(pgrep -x -f "sleep $(job_arg "$k")" || true)
    [ "$(echo "$found" | grep -c .)" = 1 ] || return 1
    if [ -n "${1:-}" ] && [ "$(ps -o ppid= -p "$found" | tr -d ' ')" = "$1" ]; then return 1; fi
  done
}
wait_until() {  # wait_until TIMEOUT_S CMD...: polls CMD every 10 ms
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for: $*" >&2; return 1; fi
    sleep 0.01
  done
}
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
for i in 1 2 3 4 5; do wait_for "$logs/node$i.log" "supervisor children=5 " 20; done
wait_until 20 one_each
echo "node1 added 5 supervised children (sleep processes); rendezvous placement spread them:"
where_jobs
echo
echo "-- node1's log so far:"
cat "$logs/node1.log"
echo

echo "== kill -9 node3"
orphans=$(where_jobs | awk '/on node3$/ {print $1}')
killed=$(ms)
kill -9 "${pids[2]}"
for i in 1 2 4 5; do wait_for "$logs/node$i.log" "failed name=node3 " 20; done
echo "all 4 survivors declared node3 failed within $(( $(ms) - killed )) ms"
grep -h "failed name=node3 " "$logs"/node{1,2,4,5}.log
for i in 1 2 4 5; do wait_for "$logs/node$i.log" "registry unregistered name=payments " 20; done
echo "its name 'payments' is gone on every survivor $(( $(ms) - killed )) ms after the kill:"
grep -h "registry unregistered name=payments \|registry purged" "$logs"/node{1,2,4,5}.log
wait_until 20 one_each "${pids[2]}"
echo "its children ($(echo $orphans)) died with it and each runs again, once, on a survivor:"
where_jobs
for j in $orphans; do grep -h "supervisor started name=$j " "$logs"/node{1,2,4,5}.log | tail -n 1; done
echo

echo "== node2 leaves gracefully (SIGTERM): it hands its children over first"
left=$(ms)
kill -TERM "${pids[1]}"
for i in 1 4 5; do wait_for "$logs/node$i.log" "left name=node2 " 20; done
echo "node1, node4, node5 saw node2 leave within $(( $(ms) - left )) ms"
wait "${pids[1]}" && echo "node2 exited with status 0"
grep -h "agent draining\|supervisor stopping\|agent leaving" "$logs/node2.log" || true
wait_until 20 one_each "${pids[1]}"
echo "each of its children was started elsewhere before its own copy stopped; now:"
where_jobs
echo

echo "== stopping the rest"
for i in 0 3 4; do kill -TERM "${pids[$i]}"; done
for i in 0 3 4; do wait "${pids[$i]}" || true; done
tail -n 1 "$logs/node1.log"
if [ -z "$(where_jobs)" ]; then echo "no child process is left"; else where_jobs; fi
echo

echo "== replicated-map benchmark (bench/crdt_bench)"
mkdir -p out
./build/release/bench/crdt_bench --json out/crdt_bench.json "$@"
