#!/usr/bin/env bash
# Checks the one direction of dependency between layers (ARCHITECTURE.md): a layer includes
# only itself and the layers below it, and the protocol cores include no OS or event-loop headers.
# Prints each violation and exits non-zero if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

# Layer order, lowest first. A file in layer i may include project headers of layers 0..i.
layers=(crdt cluster registry messaging supervisor lib bin)
status=0

for i in "${!layers[@]}"; do
  layer=${layers[$i]}
  [ -d "$layer" ] || continue
  allowed="${layers[*]:0:$((i + 1))}"
  while IFS=: read -r file line include; do
    target=$(sed -E 's/.*#include "([^/"]+)\/.*/\1/' <<<"$include")
    case " $allowed " in
      *" $target "*) ;;
      *)
        if [[ " ${layers[*]} " == *" $target "* ]]; then
          echo "$file:$line: layer '$layer' includes '$target', a layer above it" >&2
          status=1
        fi
        ;;
    esac
  done < <(grep -rnE '^#include "[a-z_]+/' "$layer" --include='*.h' --include='*.cpp' || true)
done

# crdt/ is pure: no IO, clock, threads or event loop.
if grep -rnE '^#include <(uv\.h|thread|chrono|fstream|sys/|unistd\.h|random)>' crdt \
     --include='*.h' --include='*.cpp'; then
  echo "crdt/ must not include IO, clock, thread or RNG headers (above)" >&2
  status=1
fi
# The protocol cores are sans-IO: only the libuv drivers (cluster/uv/, supervisor/uv/) and bin/
# may use libuv.
if grep -rnE '^#include <uv\.h>' crdt cluster registry messaging supervisor --include='*.h' --include='*.cpp' |
     grep -vE '^(cluster|supervisor)/uv/'; then
  echo "only the libuv drivers (cluster/uv/, supervisor/uv/) and bin/ may include <uv.h> (above)" >&2
  status=1
fi
# The public headers (include/shoal/) are all a user gets: they include only each other and the
# standard library, never a layer's header.
if grep -rnE '^#include "' include --include='*.h' --include='*.h.in' | grep -vE '#include "shoal/'; then
  echo "include/shoal/ may include only shoal/ headers (above): the layers are not installed" >&2
  status=1
fi
exit $status
