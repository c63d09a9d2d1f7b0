#!/usr/bin/env bash
# pdiff-CPU vs diffusers on PyTorch-CPU, FLUX.2 transformer step time, same config, same machine, one
# run: makes the model with diffusers (tools/flux2_bench_reference.py, pinned in tools/refenv.sh), times
# diffusers with 1 and 2 threads, then bench_flux2: every layout with 1 GEMM thread per rank (serial vs
# diffusers on 1 thread, 2-rank layouts vs diffusers on 2), then serial with every core (PDIFF_CPU_THREADS).
#   scripts/bench_flux2.sh [small|real]   small (default): 8x64 heads, 256+64 tokens (overhead-bound);
#                                         real: 12x128 heads, 1024+256 tokens (compute-bound, issue 13)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PDIFF_BUILD_DIR:-build}
config=${1:-small}
PY=$(tools/refenv.sh)
dir=${PDIFF_FLUX2_BENCH_DIR:-/tmp/pdiff_flux2_bench_$config}
steps=10
[ "$config" = real ] && steps=3
mkdir -p "$dir"
"$PY" tools/flux2_bench_reference.py "$dir" --config "$config" --threads 1 --steps $steps
"$PY" tools/flux2_bench_reference.py "$dir" --config "$config" --threads 2 --steps $steps
cmake --build "$build" --target bench_flux2 >/dev/null
export PDIFF_FLUX2_BENCH_DIR="$dir" PDIFF_FLUX2_BENCH_STEPS=$steps
"$build/bench/models/bench_flux2"
PDIFF_CPU_THREADS=$(nproc) "$build/bench/models/bench_flux2" --benchmark_filter='BM_flux2_step<Layout<OnCpu>>'

