#!/usr/bin/env bash
# pdiff-CPU vs diffusers on PyTorch-CPU, FLUX.2 transformer step time, same small config, same
# machine, one run: makes the model with diffusers (tools/flux2_bench_reference.py, pinned in
# tools/refenv.sh), times diffusers with 1 and 2 threads, then bench_flux2 (serial and 2-rank layouts).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PDIFF_BUILD_DIR:-build}
PY=$(tools/refenv.sh)
dir=${PDIFF_FLUX2_BENCH_DIR:-/tmp/pdiff_flux2_bench}
mkdir -p "$dir"
"$PY" tools/flux2_bench_reference.py "$dir" --threads 1
"$PY" tools/flux2_bench_reference.py "$dir" --threads 2
cmake --build "$build" --target bench_flux2 >/dev/null
PDIFF_FLUX2_BENCH_DIR="$dir" "$build/bench/models/bench_flux2"
