#!/usr/bin/env bash
# One command: installs what is missing, builds the FLUX.2 example for TP<2> x Ulysses<2> and runs it
# on the CPU over 4 thread ranks on the committed tiny FLUX.2-dev checkpoint (a diffusers folder made
# by tools/make_flux2_e2e_goldens.py; random weights, so the picture is abstract). Writes out/flux2.png.
# Extra arguments go to the example (e.g. --prompt "..." --steps 30 --width 512 --height 512).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
build=${PDIFF_BUILD_DIR:-build}
scripts/configure.sh -DPDIFF_BUILD_TESTS=OFF -DPDIFF_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target flux2_tp2_ulysses2
mkdir -p out
"$build/examples/flux2_tp2_ulysses2" --model tests/golden/flux2_tiny/dev/e2e \
  --prompt "A red fox sitting in fresh snow, morning light" --width 256 --height 256 --steps 20 --seed 42 \
  -o out/flux2.png "$@"
