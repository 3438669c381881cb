#!/usr/bin/env bash
# Installs the Debian packages shoal builds, tests and benchmarks with, if any is missing.
# Idempotent and silent when everything is there. Needs root (or sudo) only when it installs.
set -euo pipefail

packages=(
  g++ cmake make pkg-config          # toolchain
  libuv1-dev                         # event loop, sockets, timers, processes
  libmsgpack-cxx-dev                 # wire format (msgpack-c, C++ headers)
  libboost-dev libboost-test-dev     # Boost.Intrusive (headers), Boost.Test
  libcli11-dev                       # command line of the shoal binary
  libsodium-dev                      # AEAD sealing of packets
  libfmt-dev libspdlog-dev           # formatting and logging
  iproute2 iptables nftables         # the fault lab: namespaces, veth, bridge, packet queue
  python3                            # examples/ (the stack server) and the Python benchmarks
  clang-format                       # the format check (.ci/run)
  dpkg-dev                           # the .deb (cpack: dpkg-shlibdeps finds its dependencies)
  chromium python3-websocket         # the dashboard's browser test (DevTools protocol)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
