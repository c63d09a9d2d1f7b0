#!/usr/bin/env bash
# One command: installs what is missing, builds everything, runs the whole test suite.
#   scripts/test.sh                 all tests (GPU tests report "skipped" without a GPU)
#   scripts/test.sh -L parallel     extra arguments go to ctest
# Env: PDIFF_CMAKE_ARGS (extra configure arguments; CI passes -DPDIFF_ALL_EXAMPLE_LAYOUTS=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
build=${PDIFF_BUILD_DIR:-build}
start=$(date +%s)
scripts/configure.sh -DPDIFF_BUILD_TESTS=ON -DPDIFF_BUILD_BENCH=ON -DPDIFF_BUILD_EXAMPLES=ON ${PDIFF_CMAKE_ARGS:-} >/dev/null  # undo a demo.sh configure
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --timeout 600 "$@"
echo "pdiff: build + tests took $(( $(date +%s) - start )) s"
