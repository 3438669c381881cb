#!/usr/bin/env bash
# Builds the Debian package: a Release build (build/release), then cpack into out/.
#   scripts/package.sh && sudo apt install ./out/shoal_*_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSHOAL_WERROR=ON >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target shoal
mkdir -p out
(cd build/release && cpack -B "$PWD/../../out" >/dev/null)
rm -rf out/_CPack_Packages
ls out/shoal_*.deb
