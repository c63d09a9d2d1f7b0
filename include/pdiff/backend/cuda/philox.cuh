// pdiff/backend/cuda/philox.cuh — Philox noise drawn on the device, bit-identical to the CPU.
//
// | function                                  | result                                                 |
// |-------------------------------------------|--------------------------------------------------------|
// | fill_normal(x, gen)                       | x[i] = T(philox_normal(gen.seed, gen.offset + i)); gen advances by numel |
// | fill_uniform(x, gen)                      | the same with philox_uniform (in [0, 1))               |
// | philox_normal_at(x, seed, offset)         | x[i] = T(philox_normal(seed, offset + i)), no generator |
// | philox_uniform_at(x, seed, offset)        | the same with philox_uniform                           |
// The kernels call core/philox.hpp's PDIFF_HD functions (the math is not repeated here), which use
// only correctly rounded operations and explicit fmaf, so element i equals the CPU's
// Philox{seed, offset}.fill_normal(...) element i, bit for bit; bf16/f16 outputs equal the CPU's
// float result converted by convert<T>. Enqueued on current_cuda_stream(). A kernel header: include
// it from a .cu file compiled by nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "pdiff/backend/cuda/philox.cuh holds kernels: include it from a .cu file compiled by nvcc"
#endif

#include <algorithm>
#include <cstdint>

#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
template <class T, bool Normal>
__global__ void philox_kernel(T* __restrict__ out, std::int64_t n, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const std::uint64_t at = offset + std::uint64_t(i);
    if constexpr (Normal) out[i] = from_float<T>(philox_normal(seed, at));
    else out[i] = from_float<T>(philox_uniform(seed, at));
  }
}

template <bool Normal, class T>
void philox_launch(Tensor<T, OnCuda>& x, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t n = x.numel();
  if (n == 0) return;
  const auto blocks = unsigned(std::min<std::int64_t>((n + 255) / 256, std::int64_t(1) << 16));
  philox_kernel<T, Normal><<<blocks, 256, 0, current_cuda_stream()>>>(x.data(), n, seed, offset);
  PDIFF_CUDA_CHECK_LAUNCH();
}
}  // namespace detail

// x: any shape; element i (row-major) = element offset + i of the normal stream `seed`.
template <class T>
void philox_normal_at(Tensor<T, OnCuda>& x, std::uint64_t seed, std::uint64_t offset) {
  detail::philox_launch<true>(x, seed, offset);
}
template <class T>
void philox_uniform_at(Tensor<T, OnCuda>& x, std::uint64_t seed, std::uint64_t offset) {
  detail::philox_launch<false>(x, seed, offset);
}

// Draws the next x.numel() numbers of `gen` (as gen.fill_normal would on the CPU) and advances it.
template <class T>
void fill_normal(Tensor<T, OnCuda>& x, Philox& gen) {
  const std::uint64_t at = gen.advance(std::uint64_t(x.numel()));
  philox_normal_at(x, gen.seed, at);
}
template <class T>
void fill_uniform(Tensor<T, OnCuda>& x, Philox& gen) {
  const std::uint64_t at = gen.advance(std::uint64_t(x.numel()));
  philox_uniform_at(x, gen.seed, at);
}

}  // namespace pdiff
