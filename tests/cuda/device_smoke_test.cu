// The CUDA toolchain end to end: a kernel compiled by nvcc for sm_80/sm_90a runs and its result is
// read back (only on a machine with a GPU; skipped elsewhere).
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <vector>

namespace {
__global__ void iota_kernel(int* out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = 3 * i + 1;
}
}  // namespace

TEST_CASE("a kernel runs on the device and its output is read back") {
  const int n = 1000;
  int* d = nullptr;
  REQUIRE(cudaMalloc(&d, n * sizeof(int)) == cudaSuccess);
  iota_kernel<<<(n + 255) / 256, 256>>>(d, n);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  std::vector<int> h(n);
  REQUIRE(cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  cudaFree(d);
  for (int i = 0; i < n; ++i) CHECK(h[std::size_t(i)] == 3 * i + 1);
}
