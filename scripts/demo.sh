#!/usr/bin/env bash
# One command: installs what is missing, builds the examples and runs the main one on the CPU over
# several thread ranks; the output file path is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
build=${PDIFF_BUILD_DIR:-build}
scripts/configure.sh -DPDIFF_BUILD_TESTS=OFF -DPDIFF_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target tp_attention_demo
mkdir -p out
"$build/examples/tp_attention_demo" --tokens 256 --heads 8 --head-dim 64 -o out/tp_attention_demo.png "$@"
