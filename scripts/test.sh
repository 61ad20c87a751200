#!/bin/sh
# Installs what is missing, builds Parley three times (release with the
# benchmark programs, ASan+UBSan, libFuzzer) and runs every test — unit,
# integration, the same under the sanitizers, a fuzz smoke run of every
# decoder, and `bench --quick` (the harness works; no figure is judged) —
# in one ctest run.
# usage: scripts/test.sh            (FUZZ_SECONDS=30 by default)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/install-deps.sh

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON >/dev/null
cmake --build build-asan -j2
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DPARLEY_FUZZ=ON \
  -DPARLEY_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_BENCH=ON \
  -DPARLEY_ASAN_DIR="$top/build-asan" -DPARLEY_FUZZ_DIR="$top/build-fuzz" \
  -DPARLEY_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
cmake --build build -j2
# The dashboard's front end, served by parley-index and driven by the
# browser test (ctest e2e.dashboard).
scripts/build-web.sh >/dev/null
cd build
ctest --output-on-failure --timeout 900 -j2
