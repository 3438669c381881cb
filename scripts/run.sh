#!/usr/bin/env bash
# The main job: build shoal (Release), start 3 agents on 127.0.0.1 that find each other by
# multicast on loopback, and show the cluster working through the CLI: `shoal members`, a global
# name, messaging (a call to an echo worker on another node, a publish to a group a `shoal recv`
# joined, a command run with `shoal exec` on the node a key belongs to), children started with
# `shoal run` (exec processes and an in-process counter), a kill -9 of
# the agent that runs the most of them, `shoal ps` showing them running again on the survivors
# (the counter resumed from its checkpoint), a graceful `shoal leave`, then it stops everything it
# started. Logs stay in out/demo/.
#
#   SHOAL_DEMO_PORT=7946 scripts/run.sh    (first of 3 consecutive ports; the default)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target shoal

shoal=./build/release/bin/shoal
base=${SHOAL_DEMO_PORT:-7946}
group="239.255.77.46:$((base + 100))"
logs=out/demo
rm -rf "$logs" && mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ms() { date +%s%3N; }
sock() { echo "$logs/data/node$1/shoal.sock"; }
# on N CMD...: the CLI against agent N.
on() { local n=$1; shift; SHOAL_RPC=$(sock "$n") "$shoal" "$@"; }
# show N CMD...: prints the command, then its output.
show() { local n=$1; shift; echo "\$ shoal $* (on node$n)"; on "$n" "$@"; echo; }
# wait_until TIMEOUT_S CMD...: polls CMD every 20 ms.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for: $*" >&2; return 1; fi
    sleep 0.02
  done
}
alive() { [ "$(on "$1" members --status alive --format json | grep -o '"status":"alive"' | wc -l)" = "$2" ]; }
# running N COUNT: agent N lists COUNT children running, none on a node that is not alive.
running() {
  [ "$(on "$1" ps --format json | grep -o '"status":"running"' | wc -l)" = "$2" ] &&
    ! on "$1" ps --format json | grep -q "\"node\":\"${3:-none}\""
}

echo "== starting 3 agents on 127.0.0.1:$base..$((base + 2)) (multicast discovery, group $group)"
start=$(ms)
for i in 1 2 3; do
  "$shoal" agent --name "node$i" --bind "127.0.0.1:$((base + i - 1))" --multicast-group "$group" \
    --tag "zone=z$i" --data-dir "$logs/data/node$i" 2> "$logs/node$i.log" &
  pids+=($!)
done
for i in 1 2 3; do wait_until 20 alive "$i" 3; done
echo "every agent sees all 3 alive after $(( $(ms) - start )) ms"
echo
show 1 members

on 3 register payments >/dev/null
wait_until 10 on 1 whereis payments
show 1 whereis payments

echo "== messaging"
on 2 run --name echo --worker echo >/dev/null
wait_until 10 on 1 whereis echo
echo "\$ shoal run --name echo --worker echo (on node2)"
show 1 call echo "hello from node1"
on 3 recv --group news --count 1 > "$logs/recv.out" &
recv_pid=$!
pids+=("$recv_pid")
has_member() { on 1 group news --format json | grep -q '"pid"'; }
wait_until 10 has_member
echo "\$ shoal recv --group news --count 1 (on node3, in the background)"
show 1 publish news "deploy finished"
wait "$recv_pid"
echo "what shoal recv printed on node3:"
cat "$logs/recv.out"
echo
show 1 exec --key payments -- sh -c 'echo "this ran on $SHOAL_NODE"'
on 1 stop echo >/dev/null

demo_id=$(( base % 10000 ))
for k in 1 2 3 4 5; do on 1 run --name "job$k" -- sleep $(( 900000 + demo_id * 10 + k )) >/dev/null; done
on 2 run --name tally --worker counter >/dev/null
echo "\$ shoal run --name job1..job5 -- sleep N; shoal run --name tally --worker counter"
wait_until 20 running 3 6
show 3 ps

# The victim: the agent that runs the most children.
victim=1 most=0
for i in 1 2 3; do
  n=$(on 1 ps --node "node$i" --format json | grep -o '"name"' | wc -l)
  if [ "$n" -gt "$most" ]; then victim=$i most=$n; fi
done
survivor=$(( victim % 3 + 1 ))
# The counter checkpoints every second: once it has run 1.5 s, the failover resumes from one.
tally_up() {
  local up
  up=$(on 1 ps --format json | grep -o '"name":"tally"[^}]*"uptime_ms":[0-9]*' | grep -o '[0-9]*$')
  [ "${up:-0}" -ge 1500 ]
}
wait_until 10 tally_up
echo "== kill -9 node$victim (it runs $most of the 6 children)"
killed=$(ms)
disown "${pids[$((victim - 1))]}"  # no "Killed" notice from bash
kill -9 "${pids[$((victim - 1))]}"
wait_until 20 running "$survivor" 6 "node$victim"
echo "all 6 children run again on the survivors $(( $(ms) - killed )) ms after the kill"
echo
show "$survivor" ps
show "$survivor" members
echo "the OS processes of the exec children (their parent is a surviving agent):"
for k in 1 2 3 4 5; do
  p=$(pgrep -x -f "sleep $(( 900000 + demo_id * 10 + k ))" || true)
  echo "  job$k  os_pid=${p:-none}  parent=$(ps -o ppid= -p "${p:-1}" | tr -d ' ')"
done
echo "  (agents: $(for i in 1 2 3; do [ "$i" = "$victim" ] || echo -n "node$i=${pids[$((i - 1))]} "; done))"
echo

other=$(( 6 - victim - survivor ))
echo "== node$other leaves gracefully: \`shoal leave\` hands its children over, then the agent exits"
echo "\$ shoal leave (on node$other)"
on "$other" leave
wait "${pids[$((other - 1))]}" && echo "node$other exited with status 0"
wait_until 20 running "$survivor" 6 "node$other"
show "$survivor" ps

echo "== stopping the rest"
on "$survivor" stop job1 job2 job3 job4 job5 tally
on "$survivor" leave >/dev/null
wait "${pids[$((survivor - 1))]}" && echo "node$survivor exited with status 0"
left=$(for k in 1 2 3 4 5; do pgrep -x -f "sleep $(( 900000 + demo_id * 10 + k ))" || true; done)
if [ -z "$left" ]; then echo "no child process is left"; else echo "still running: $left"; fi
echo "the counter's copies, as they stopped (a failover resumes from the last checkpoint, a graceful move from the final count):"
grep -h "stopped name=tally\|exited name=tally" "$logs"/node{1,2,3}.log | sort || true
echo "logs: $logs/node{1,2,3}.log"
