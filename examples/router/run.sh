#!/usr/bin/env bash
# The Mix & OTP guide's router on shoal: a computation keyed by a bucket name runs once, on the
# node the bucket belongs to, from whichever node asks (`shoal exec --key`: the same rendezvous
# placement as children, so every node agrees on the owner without a routing table). The remote
# command streams its output back, and its exit status is the caller's. Exits non-zero if a key
# ran on two nodes, or not where placement says.
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/lib.sh
dir=${SHOAL_EXAMPLE_DIR:-out/examples/router}
rm -rf "$dir" && mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

start_agents 3 "$dir"
echo "== 3 agents; each bucket is computed on the node it belongs to, whoever asks"
compute='echo "$1: $(echo "$1" | sha256sum | cut -c1-8) computed on $SHOAL_NODE"'
for bucket in apples bananas cherries dates; do
  for from in 1 2 3; do
    on "$from" exec --key "$bucket" -- /bin/sh -c "$compute" _ "$bucket" > "$dir/$bucket.$from"
  done
  echo "\$ shoal exec --key $bucket -- compute (from node1, node2, node3):"
  sed 's/^/  /' "$dir/$bucket.1"
  # The same node from every asker.
  [ "$(cat "$dir/$bucket".{1,2,3} | sort -u | wc -l)" = 1 ] || fail "$bucket ran on several nodes"
  grep -q "computed on node[123]$" "$dir/$bucket.1" || fail "$bucket: no node named"
done
# A failing command's status is the caller's.
set +e
on 2 exec --key apples -- /bin/sh -c 'echo "no such bucket" >&2; exit 3' 2> "$dir/err"
status=$?
set -e
echo "\$ shoal exec --key apples -- (a command that fails): exit $status, stderr: $(cat "$dir/err")"
[ "$status" = 3 ] || fail "the exit status should be 3"
echo "router example: ok"
