#!/usr/bin/env bash
# Batch throughput, pdiff vs diffusers on PyTorch-CPU, same folder, same machine, one run: makes the
# pipeline folder with diffusers (tools/flux2_batch_bench_reference.py, pinned in tools/refenv.sh), times
# diffusers' Flux2KleinPipeline on batches of 1, 2, 4, 8 images with 1 and 2 threads, then
# bench_flux2_batch: serial (vs diffusers on 1 thread), DP<2> and TP<2> (vs diffusers on 2).
#   scripts/bench_flux2_batch.sh            (PDIFF_BUILD_DIR: a build with -DPDIFF_BUILD_BENCH=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PDIFF_BUILD_DIR:-build}
PY=$(tools/refenv.sh)
dir=${PDIFF_FLUX2_BATCH_DIR:-/tmp/pdiff_flux2_batch}
"$PY" tools/flux2_batch_bench_reference.py "$dir" --threads 1 2>/dev/null
"$PY" tools/flux2_batch_bench_reference.py "$dir" --threads 2 2>/dev/null
cmake --build "$build" --target bench_flux2_batch >/dev/null
PDIFF_FLUX2_BATCH_DIR="$dir" "$build/bench/models/bench_flux2_batch"
