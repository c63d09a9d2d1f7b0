#!/usr/bin/env bash
# Builds a chosen subset of the CPU tests with sanitizers and runs it with ctest (CI runs both parts):
#   asan  build-asan: -fsanitize=address,undefined (LeakSanitizer included), -O1 -g, CUDA/bench/examples off.
#         core (dtype, tensor, philox, gemm), io (safetensors, config, image), comm (ThreadComm; MpiComm under
#         mpirun -np 4), layers (ops), parallel (layout, rank + launch on thread ranks), FLUX.2 (the pipeline
#         golden on TP/Ulysses thread ranks). OpenMPI's own allocations are suppressed for LeakSanitizer by
#         tests/sanitizers/lsan.supp (MPI libraries only); the MPI test runs on its own with OpenMPI's
#         components kept loaded and the slow unwinder, so their frames have names the file can match.
#   tsan  build-tsan: -fsanitize=thread, the tests that run ranks as threads (ThreadComm, launch, the
#         parallel attention layer with TP/Ulysses/Ring collectives); MPI is off there, OpenMPI is not
#         ThreadSanitizer-clean, and so is OpenBLAS (uninstrumented threads): this build takes the Eigen
#         GEMM path, which the ASan build (OpenBLAS) does not.
# Not covered, to keep CI near 10 minutes on 2 cores (each costs 50-130 s of compile under ASan): the
# tokenizer and safetensors parsers run under ASan + UBSan in scripts/fuzz.sh instead of test_tokenizer;
# test_cfg, test_layers_attention (TSan only), test_layers_linear, test_vae_patch, test_mpi_launch,
# test_mpi_comm_timeout, test_unicode_normalization, the other models/ tests, compile_fail, headers, CUDA.
# Usage: scripts/sanitize.sh [asan] [tsan]        (default: both)
# Env: JOBS (default 2), PDIFF_ASAN_DIR (default build-asan), PDIFF_TSAN_DIR (default build-tsan).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(asan tsan)
jobs=${JOBS:-2}

asan_tests=(test_dtype test_tensor test_philox test_gemm_cpu
            test_safetensors test_config test_image
            test_thread_comm test_layer_ops test_layout test_rank
            test_flux2_pipeline)
asan_mpi_tests=(test_mpi_comm)
tsan_tests=(test_thread_comm test_rank test_layers_attention)

export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# ctest_only <build dir> <tests...>: runs exactly these tests
ctest_only() {
  local dir=$1; shift
  ctest --test-dir "$dir" -R "^($(IFS='|'; echo "$*"))\$" -j "$jobs" --output-on-failure --timeout 600
}

# sanitize <name> <build dir> <sanitizer flags> <extra cmake args> <tests...>
sanitize() {
  local name=$1 dir=$2 flags=$3 extra=$4; shift 4
  local t0 t1; t0=$(date +%s)
  echo "== $name: $# tests in $dir"
  # Debug keeps asserts on; -O1 keeps the tests fast enough under the sanitizer
  PDIFF_BUILD_DIR=$dir scripts/configure.sh -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DPDIFF_ENABLE_CUDA=OFF -DPDIFF_NATIVE=OFF \
    -DPDIFF_BUILD_TESTS=ON -DPDIFF_BUILD_BENCH=OFF -DPDIFF_BUILD_EXAMPLES=OFF $extra >/dev/null
  cmake --build "$dir" -j "$jobs" --target "$@"
  t1=$(date +%s)
  if [ "$name" = asan ]; then
    local plain=() mpi=() t
    for t in "$@"; do
      if [[ " ${asan_mpi_tests[*]} " == *" $t "* ]]; then mpi+=("$t"); else plain+=("$t"); fi
    done
    ctest_only "$dir" "${plain[@]}"
    # OpenMPI unloads its components at exit and is built without frame pointers: keep them loaded
    # (mca_base_component_disable_dlclose) and unwind malloc stacks from DWARF, for the MPI test only
    if ((${#mpi[@]})); then
      OMPI_MCA_mca_base_component_disable_dlclose=1 ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 \
        ctest_only "$dir" "${mpi[@]}"
    fi
  else
    ctest_only "$dir" "$@"
  fi
  echo "pdiff: $name build $(( t1 - t0 )) s, tests $(( $(date +%s) - t1 )) s"
}

for p in "${parts[@]}"; do
  case "$p" in
    asan) sanitize asan "${PDIFF_ASAN_DIR:-build-asan}" "-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
            "" "${asan_tests[@]}" "${asan_mpi_tests[@]}" ;;
    tsan) sanitize tsan "${PDIFF_TSAN_DIR:-build-tsan}" "-fsanitize=thread" "-DPDIFF_ENABLE_MPI=OFF -DPDIFF_ENABLE_OPENBLAS=OFF" "${tsan_tests[@]}" ;;
    *) echo "sanitize.sh: unknown part '$p' (asan, tsan)" >&2; exit 2 ;;
  esac
done
