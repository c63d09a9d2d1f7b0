#!/usr/bin/env bash
# The benchmark suite users run: one command per model sweeps the layouts pdiff has for it on this
# machine (thread ranks), times the PyTorch-CPU reference on the same inputs in the same run, and writes
# one JSON file and PNG plots (tools/bench_report.py) to OUT (default out/bench).
#   scripts/bench.sh [--model flux2|flux2-batch] [--quick] [--mpi] [--out DIR]
#     flux2        FLUX.2 transformer step per layout (serial, TP<2>, Ulysses<2>, Ring<2>, TP<2> x Ulysses<2>):
#                  time, peak memory per rank, bytes per rank per step measured and from the layout
#                  advisor's formula, the advisor's predicted time (at the GEMM rate measured here) and
#                  its rank correlation with the measured times; diffusers on 1 and 2 threads.
#                  Real head size (12x128, 1024 + 256 tokens); --quick: 8x64 heads, 256 + 64 tokens.
#                  --mpi: the 2-rank layouts once more as processes (mpirun -np 2, MpiComm), rows "... (mpirun)".
#     flux2-batch  images per second for batches of 1, 2, 4, 8 on serial, DP<2>, TP<2> vs diffusers'
#                  Flux2KleinPipeline on 1 and 2 threads (--quick: batches 1 and 2).
# Needs a build with benchmarks (PDIFF_BUILD_DIR, default build/: scripts/configure.sh -DPDIFF_BUILD_BENCH=ON)
# and makes the pinned Python env (tools/refenv.sh) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
model=flux2 quick=0 mpi=0 out=out/bench
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=${2:?--model needs a name}; shift 2 ;;
    --quick) quick=1; shift ;;
    --mpi) mpi=1; shift ;;
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    *) echo "bench.sh: unknown argument '$1' (scripts/bench.sh [--model flux2|flux2-batch] [--quick] [--mpi] [--out DIR])" >&2; exit 2 ;;
  esac
done
case "$model" in
  flux2|flux2-batch) ;;
  *) echo "bench.sh: unknown model '$model'; this suite has flux2 and flux2-batch" >&2; exit 2 ;;
esac
build=${PDIFF_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || [ -f "$build/Makefile" ] || { echo "bench.sh: no build in '$build'; run scripts/configure.sh -DPDIFF_BUILD_BENCH=ON (or set PDIFF_BUILD_DIR)" >&2; exit 2; }
PY=$(tools/refenv.sh)
mkdir -p "$out"
ref="$out/$model.reference.txt" raw="$out/$model.raw.json"
: > "$ref"
if [ "$model" = flux2 ]; then
  config=real steps=2
  [ $quick = 1 ] && config=small steps=5
  dir=${PDIFF_FLUX2_BENCH_DIR:-/tmp/pdiff_flux2_bench_$config}
  mkdir -p "$dir"
  cmake --build "$build" --target bench_flux2 bench_gemm_cpu >/dev/null
  for t in 1 2; do "$PY" tools/flux2_bench_reference.py "$dir" --config $config --threads $t --steps $steps 2>/dev/null | tee -a "$ref"; done
  # the GEMM rate of one core at a FLUX.2 shape: the advisor's compute rate for its prediction
  gflops=$("$build/bench/core/bench_gemm_cpu" --benchmark_filter='BM_pdiff_gemm/1280/1536/1536/1$' --benchmark_format=json \
    | "$PY" -c "import json,sys; print(json.load(sys.stdin)['benchmarks'][0]['GFLOP/s'] / 1e9)")
  echo "GEMM on one core: $gflops GFLOP/s"
  PDIFF_FLUX2_BENCH_DIR="$dir" PDIFF_FLUX2_BENCH_STEPS=$steps PDIFF_ADVISOR_GFLOPS=$gflops \
    "$build/bench/models/bench_flux2" --benchmark_out="$raw" --benchmark_out_format=json
  mpi_args=()
  if [ $mpi = 1 ]; then
    command -v mpirun >/dev/null || { echo "bench.sh: --mpi needs mpirun (scripts/deps.sh installs OpenMPI)" >&2; exit 2; }
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PDIFF_FLUX2_BENCH_DIR="$dir" PDIFF_FLUX2_BENCH_STEPS=$steps \
      PDIFF_ADVISOR_GFLOPS=$gflops mpirun --oversubscribe -np 2 "$build/bench/models/bench_flux2" \
      --benchmark_out="$out/$model.mpi.raw.json" --benchmark_out_format=json
    mpi_args=(--raw-mpi "$out/$model.mpi.raw.json")
  fi
  "$PY" tools/bench_report.py --model flux2 --raw "$raw" "${mpi_args[@]}" --reference "$ref" --gemm-gflops "$gflops" \
    --config $config --out "$out" >/dev/null
else
  [ $mpi = 0 ] || { echo "bench.sh: --mpi applies to --model flux2" >&2; exit 2; }
  batches=1,2,4,8 filter=.
  [ $quick = 1 ] && batches=1,2 filter='/(1|2)/'
  dir=${PDIFF_FLUX2_BATCH_DIR:-/tmp/pdiff_flux2_batch}
  cmake --build "$build" --target bench_flux2_batch >/dev/null
  for t in 1 2; do "$PY" tools/flux2_batch_bench_reference.py "$dir" --threads $t --batches $batches 2>/dev/null | tee -a "$ref"; done
  PDIFF_FLUX2_BATCH_DIR="$dir" "$build/bench/models/bench_flux2_batch" --benchmark_filter="$filter" \
    --benchmark_out="$raw" --benchmark_out_format=json
  "$PY" tools/bench_report.py --model flux2-batch --raw "$raw" --reference "$ref" --out "$out" >/dev/null
fi
echo "bench.sh: wrote $out/$model.json and $(ls "$out" | grep -c "^${model}_.*png") plot(s): $(ls "$out"/${model}_*.png | tr '\n' ' ')"
