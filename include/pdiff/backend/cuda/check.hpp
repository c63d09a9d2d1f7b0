// pdiff/backend/cuda/check.hpp — PDIFF_CUDA_CHECK(call): a failed CUDA runtime call becomes a
// pdiff::Error that names the call, the CUDA error and where it happened, e.g.
//   "CUDA: cudaMalloc(&p, size) failed: cudaErrorMemoryAllocation (out of memory) at memory.hpp:42"
// PDIFF_CUDA_CHECK_LAUNCH() checks the launch of the kernel just enqueued (cudaGetLastError).
// Only with PDIFF_WITH_CUDA; plain host C++ (compiles with g++).
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "pdiff/core/error.hpp"

namespace pdiff::detail {
[[noreturn]] inline void cuda_fail(cudaError_t e, const char* call, const char* file, int line) {
  cudaGetLastError();  // clears a non-sticky error so the caller may recover after catching
  throw Error(cat("CUDA: ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ") at ", file, ":",
                  line));
}
}  // namespace pdiff::detail

#define PDIFF_CUDA_CHECK(...)                                                         \
  do {                                                                                \
    const cudaError_t pdiff_cuda_err_ = (__VA_ARGS__);                                \
    if (pdiff_cuda_err_ != cudaSuccess)                                               \
      ::pdiff::detail::cuda_fail(pdiff_cuda_err_, #__VA_ARGS__, __FILE__, __LINE__);  \
  } while (0)

#define PDIFF_CUDA_CHECK_LAUNCH() PDIFF_CUDA_CHECK(cudaGetLastError())
#endif
