#!/usr/bin/env bash
# One command: installs what is missing, builds the FLUX.2 example for TP<2> x CFG<2> and draws six pictures
# on the CPU over 4 thread ranks (the weights split 2 ways, the prompt and negative branches on 2 rank groups)
# with pdiff's trained demo model: demo/flux2-klein-shapes, a tiny FLUX.2-klein in the real architecture and
# diffusers folder format, trained by tools/train_demo_model.py on captioned pictures of coloured shapes.
# Writes out/demo_0.png ... out/demo_5.png (64x64) in a few seconds. Extra arguments go to the example, e.g.
#   scripts/demo.sh --prompt "a large purple ring at the bottom left on a white background"
# (the model knows: small/large; red, green, blue, yellow, purple, orange; circle, square, triangle, star,
#  ring; at the top left / at the top / at the top right / on the left / in the centre / on the right /
#  at the bottom left / at the bottom / at the bottom right; on a white/black/gray/blue/green/yellow background).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
build=${PDIFF_BUILD_DIR:-build}
scripts/configure.sh -DPDIFF_BUILD_TESTS=OFF -DPDIFF_BUILD_BENCH=OFF -DPDIFF_BUILD_EXAMPLES=ON \
  -DPDIFF_ALL_EXAMPLE_LAYOUTS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target flux2_tp2_cfg2
mkdir -p out
prompts=(
  "a large red circle at the top left on a blue background"
  "a large yellow star at the bottom right on a black background"
  "a small green square in the centre on a white background"
  "a large blue triangle at the top on a gray background"
  "a large orange ring on the left on a white background"
  "a large purple star on the right on a yellow background"
)
args=()
if [ $# -eq 0 ]; then
  for p in "${prompts[@]}"; do args+=(--prompt "$p"); done
fi
# The model's pdiff.json gives the settings it was trained for: 64x64, prompts padded to 32 tokens, 20 steps of
# true CFG at 4 (flags given here or after `scripts/demo.sh` win).
"$build/examples/flux2_tp2_cfg2" --model demo/flux2-klein-shapes --seed 1 -o out/demo.png "${args[@]}" "$@"
echo "demo: the pictures are in $(pwd)/out/ (demo*.png)"
