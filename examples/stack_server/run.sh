#!/usr/bin/env bash
# The :global guide's stack server on shoal: a supervised child (stack_server.py) registered as
# "stack" on one of the two nodes tagged role=server; clients on other nodes push, pop and get
# with `shoal call`; a subscriber on a fourth node hears every change (`shoal recv --group
# stack-watchers`). Then the server's node is killed: the server starts again on the other server
# node from its last checkpoint, and the clients go on. Exits non-zero if anything is not so.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
dir=${SHOAL_EXAMPLE_DIR:-out/examples/stack_server}
rm -rf "$dir" && mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
SHOAL=$(cd "$(dirname "$SHOAL")" && pwd)/$(basename "$SHOAL")
server="$PWD/examples/stack_server/stack_server.py"

tags[1]=role=server
tags[2]=role=server
start_agents 4 "$dir"
on 3 run --name stack --constraint role=server --env "SHOAL_BIN=$SHOAL" \
  -- /usr/bin/env python3 "$server" >/dev/null
wait_until 30 sh -c "[ -n \"\$(SHOAL_RPC='$dir/node3/shoal.sock' '$SHOAL' whereis stack 2>/dev/null)\" ]"
first=$(node_of 3 stack)
echo "== 4 agents; the stack server runs on $first"

"$SHOAL" recv --rpc "$dir/node4/shoal.sock" --group stack-watchers > "$dir/watcher.out" &
pids+=($!)
wait_until 30 sh -c "SHOAL_RPC='$dir/node3/shoal.sock' '$SHOAL' group stack-watchers | grep -q node4"

call() { local i=$1; shift; echo "\$ shoal call stack '$*' (on node$i): $(on "$i" call stack "$*")"; }
call 3 push 1
call 4 push 2
call 3 push 3
call 4 pop
call 3 get
[ "$(on 3 call stack get)" = '["1", "2"]' ] || fail "the stack should be [1, 2]"

victim=${first#node}
echo "== kill -9 $first (the server's node)"
kill_agent "$victim"
wait_until 30 sh -c "[ \"\$(SHOAL_RPC='$dir/node3/shoal.sock' '$SHOAL' whereis stack --format json 2>/dev/null | grep -o node[12])\" != '$first' ] && SHOAL_RPC='$dir/node3/shoal.sock' '$SHOAL' call stack get --timeout 1000 >/dev/null"
echo "the stack server runs again on $(node_of 3 stack), resumed from its checkpoint"
call 3 get
[ "$(on 3 call stack get)" = '["1", "2"]' ] || fail "the restarted server should have [1, 2]"
call 4 push 4
call 3 get
[ "$(on 3 call stack get)" = '["1", "2", "4"]' ] || fail "the stack should be [1, 2, 4]"

wait_until 10 grep -q 'push 4' "$dir/watcher.out"
echo "the subscriber on node4 heard (\`shoal recv --group stack-watchers\`: KIND FROM TOKEN DATA):"
sed 's/^/  /' "$dir/watcher.out"
[ "$(grep -c '^send ' "$dir/watcher.out")" = 5 ] ||
  fail "the subscriber should have heard 5 changes (4 pushes, 1 pop)"
echo "stack server example: ok"
