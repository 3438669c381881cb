#!/usr/bin/env bash
# The public library as a C++ programmer gets it, from a build directory ($1) whose shoal_lib is
# built: `cmake --install` to a scratch prefix, then the separate project examples/embed built
# against it with find_package(shoal) and run (three nodes in one process, a worker type of its
# own, a move), then the same program built with pkg-config alone and run. Also checks that the
# library exports only shoal's public API. Exits 1 on the first failure.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/shoal-embed-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_embed: FAILED: $*" >&2; exit 1; }

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" --component dev >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }
echo "installed to a scratch prefix:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')

# Only the facade is exported: no layer's symbols (shoal::cluster::, shoal::supervisor::...).
lib=$(find "$prefix" -name libshoal.so | head -1)
[ -n "$lib" ] || fail "no libshoal.so under $prefix"
leaked=$(nm -DC --defined-only "$lib" |
         grep -E ' shoal::(crdt|cluster|registry|messaging|supervisor|bin)::' | head -5 || true)
[ -z "$leaked" ] || fail "internal symbols exported: $leaked"
echo "exports: $(nm -DC --defined-only "$lib" | grep -c ' shoal::') symbols of shoal::, none internal"

# find_package(shoal CONFIG REQUIRED) + shoal::shoal, from a project outside the tree.
cmake -S "$src/examples/embed" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure examples/embed"; }
cmake --build "$work/cmake-build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build examples/embed"; }
echo "== examples/embed (find_package)"
timeout 120 "$work/cmake-build/embed" || fail "examples/embed (find_package) exited $?"

# pkg-config alone.
pc=$(dirname "$(find "$prefix" -name shoal.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs shoal) || fail "pkg-config shoal"
[ "$(PKG_CONFIG_PATH="$pc" pkg-config --modversion shoal)" = \
  "$("$build/bin/shoal" --version | awk '{print $2}')" ] || fail "pkg-config version differs"
# shellcheck disable=SC2086
g++ -O1 -o "$work/embed-pc" "$src/examples/embed/main.cpp" $flags || fail "g++ with pkg-config"
echo "== examples/embed (pkg-config: $flags)"
timeout 120 "$work/embed-pc" >"$work/pc.out" || { cat "$work/pc.out"; fail "embed (pkg-config)"; }
tail -1 "$work/pc.out"
echo "check_embed: OK"
