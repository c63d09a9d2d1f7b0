// The kernel behind pdiff::test::spin (see cuda_spin.hpp).
#include <cstdint>

#include "cuda_spin.hpp"
#include "pdiff/backend/cuda/check.hpp"

namespace {
__device__ std::uint64_t global_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__global__ void spin_kernel(std::uint64_t ns) {
  const std::uint64_t t0 = global_ns();
  while (global_ns() - t0 < ns) __nanosleep(10000);
}
}  // namespace

namespace pdiff::test {
void spin(cudaStream_t s, int ms) {
  spin_kernel<<<1, 1, 0, s>>>(std::uint64_t(ms) * 1000000ull);
  PDIFF_CUDA_CHECK_LAUNCH();
}
}  // namespace pdiff::test
