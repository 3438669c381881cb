#!/usr/bin/env bash
# The Horde guide's download tracker on shoal: a supervised child (tracker.sh, transient: done
# when it ends well) publishes its progress to group "downloads"; a subscriber on another node
# prints it. Half-way, the tracker's node is killed: the tracker starts again on a survivor from
# its last checkpoint (not from 0), the subscriber keeps receiving, and the download completes.
# Exits non-zero if the subscriber misses the completion or the tracker starts over.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
dir=${SHOAL_EXAMPLE_DIR:-out/examples/download_tracker}
rm -rf "$dir" && mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
SHOAL=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL")

tags[1]=role=worker
tags[2]=role=worker
start_agents 3 "$dir"
"$SHOAL" recv --rpc "$dir/node3/shoal.sock" --group downloads > "$dir/subscriber.out" &
pids+=($!)
wait_until 30 sh -c "SHOAL_RPC='$dir/node1/shoal.sock' '$SHOAL' group downloads | grep -q node3"
on 3 run --name tracker --restart transient --constraint role=worker \
  --env "SHOAL_BIN=$SHOAL" -- "$PWD/examples/download_tracker/tracker.sh" >/dev/null
wait_until 30 grep -q '^send .* 40% ' "$dir/subscriber.out"
first=$(node_of 3 tracker)
echo "== the tracker runs on $first; at 40% its node is killed"
kill_agent "${first#node}"
wait_until 60 grep -q 'download complete' "$dir/subscriber.out"
echo "the subscriber on node3 heard (DATA of each \`shoal recv\` line):"
sed 's/^send [^ ]* - /  /' "$dir/subscriber.out"
resumed=$(sed -n 's/.*resumes at \([0-9]*\)%.*/\1/p' "$dir/subscriber.out" | tail -1)
[ "${resumed:-0}" -ge 40 ] || fail "the second copy should resume from its checkpoint, not from $resumed%"
grep -q "(on node" "$dir/subscriber.out" || fail "no progress heard"
echo "download tracker example: ok"
