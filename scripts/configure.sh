#!/usr/bin/env bash
# Configures pdiff into ${PDIFF_BUILD_DIR:-build} with Ninja and ccache. CUDA/NCCL/MPI are detected;
# CUDA sources are compiled for sm_80 and sm_90a.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${PDIFF_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CUDA_ARCHITECTURES="80;90a" "$@"
