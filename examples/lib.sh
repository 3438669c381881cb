# Shared by the examples' scripts: a few agents on 127.0.0.1, the CLI against each, waiting on a
# condition with a deadline, and cleanup of the processes the script started (by pid only).
#
#   SHOAL=path/to/shoal (default build/release/bin/shoal), SHOAL_EXAMPLE_PORT=first port (7960),
#   SHOAL_EXAMPLE_DIR=where data and logs go (out/examples/NAME).

SHOAL=${SHOAL:-build/release/bin/shoal}
base=${SHOAL_EXAMPLE_PORT:-7960}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_agents N DIR: agents node1..nodeN (node1 is the seed), tagged node=nodeI and, where the
# script set it, ${tags[I]}.
declare -a tags
start_agents() {
  local n=$1 dir=$2
  for i in $(seq 1 "$n"); do
    local extra=()
    [ "$i" -gt 1 ] && extra+=(--join "127.0.0.1:$base")
    [ -n "${tags[$i]:-}" ] && extra+=(--tag "${tags[$i]}")
    "$SHOAL" agent --name "node$i" --bind "127.0.0.1:$((base + i - 1))" --discovery seeds \
      "${extra[@]}" --tag "node=node$i" --data-dir "$dir/node$i" 2> "$dir/node$i.log" &
    pids+=($!)
    agent_pid[$i]=$!
  done
  for i in $(seq 1 "$n"); do wait_until 30 alive "$i" "$n"; done
}
declare -a agent_pid

# on I CMD...: the CLI against agent I.
on() { local i=$1; shift; SHOAL_RPC="$dir/node$i/shoal.sock" "$SHOAL" "$@"; }

alive() { [ "$(on "$1" members --status alive --format json | grep -o '"alive"' | wc -l)" = "$2" ]; }

# wait_until SECONDS CMD...: polls CMD every 50 ms; fails the script at the deadline.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for: $*" >&2; exit 1; fi
    sleep 0.05
  done
}

# node_of I NAME: the node agent I sees NAME registered on.
node_of() { on "$1" whereis "$2" --format json 2>/dev/null | sed -n 's/.*"node":"\([^"]*\)".*/\1/p'; }

fail() { echo "FAILED: $*" >&2; exit 1; }

# kill_agent I: kill -9 of agent I (quietly: no job-control notice).
kill_agent() {
  kill -9 "${agent_pid[$1]}" 2>/dev/null || true
  wait "${agent_pid[$1]}" 2>/dev/null || true
}
