// The cost of one allocate + free: pdiff's caching pool (memory<OnCuda>, a cache hit after the
// first iteration) vs cudaMalloc + cudaFree, and a whole Tensor<bf16, OnCuda> construction.
#include <benchmark/benchmark.h>

#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/core/tensor.hpp"

using namespace pdiff;

namespace {
bool have_device(benchmark::State& st) {
  if (cuda_device_count() > 0) return true;
  st.SkipWithError("no CUDA device");
  return false;
}

void BM_pool_alloc_free(benchmark::State& st) {
  if (!have_device(st)) return;
  const auto bytes = std::size_t(st.range(0));
  for (auto _ : st) {
    void* p = memory<OnCuda>::allocate(bytes);
    benchmark::DoNotOptimize(p);
    memory<OnCuda>::deallocate(p, bytes);
  }
}

void BM_cudaMalloc_free(benchmark::State& st) {
  if (!have_device(st)) return;
  const auto bytes = std::size_t(st.range(0));
  for (auto _ : st) {
    void* p = nullptr;
    PDIFF_CUDA_CHECK(cudaMalloc(&p, bytes));
    benchmark::DoNotOptimize(p);
    PDIFF_CUDA_CHECK(cudaFree(p));
  }
}

void BM_pool_tensor(benchmark::State& st) {
  if (!have_device(st)) return;
  const std::int64_t n = st.range(0) / 2;
  for (auto _ : st) {
    Tensor<bf16, OnCuda> t({n});
    benchmark::DoNotOptimize(t.data());
  }
}
}  // namespace

BENCHMARK(BM_pool_alloc_free)->RangeMultiplier(64)->Range(1 << 10, 1 << 28);
BENCHMARK(BM_cudaMalloc_free)->RangeMultiplier(64)->Range(1 << 10, 1 << 28);
BENCHMARK(BM_pool_tensor)->RangeMultiplier(64)->Range(1 << 10, 1 << 28);
BENCHMARK_MAIN();
