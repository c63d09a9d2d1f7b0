// pdiff/backend/cuda/convert.cuh — element-type conversion of device tensors (f32 ↔ bf16 ↔ f16, ...).
//
// | function                  | result                                                           |
// |---------------------------|------------------------------------------------------------------|
// | convert<U>(src)           | a new Tensor<U, OnCuda>, src converted element-wise              |
// | convert_into(dst, src)    | the same into an existing tensor of equal element count          |
// Every element goes through float with core/dtype.hpp's conversions (round to nearest even), the
// same PDIFF_HD code the CPU's convert<U> runs, so the bits equal the CPU's. Enqueued on
// current_cuda_stream(). A kernel header: include it from a .cu file compiled by nvcc.
#pragma once

#if !defined(__CUDACC__)
#error "pdiff/backend/cuda/convert.cuh holds kernels: include it from a .cu file compiled by nvcc"
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/memory.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
template <class U, class T>
__global__ void convert_kernel(const T* __restrict__ src, U* __restrict__ dst, std::int64_t n) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = from_float<U>(to_float(src[i]));
}

// A grid-stride launch shape for n elements: 256 threads, at most 2^16 blocks.
inline unsigned elementwise_blocks(std::int64_t n) {
  return unsigned(std::min<std::int64_t>((n + 255) / 256, std::int64_t(1) << 16));
}
}  // namespace detail

// dst (any shape, numel n) ← src (numel n) converted to U.
template <class U, class T>
void convert_into(Tensor<U, OnCuda>& dst, const Tensor<T, OnCuda>& src) {
  PDIFF_CHECK(dst.numel() == src.numel(), "convert_into<OnCuda>: destination ", dst.shape(), " and source ",
              src.shape(), " differ in element count");
  const std::int64_t n = src.numel();
  if (n == 0) return;
  if constexpr (std::is_same_v<U, T>) {
    memory<OnCuda>::copy(dst.data(), src.data(), src.bytes());
  } else {
    detail::convert_kernel<U, T><<<detail::elementwise_blocks(n), 256, 0, current_cuda_stream()>>>(src.data(),
                                                                                                 dst.data(), n);
    PDIFF_CUDA_CHECK_LAUNCH();
  }
}

// A new tensor holding `src` converted element-wise to U.
template <class U, class T>
Tensor<U, OnCuda> convert(const Tensor<T, OnCuda>& src) {
  Tensor<U, OnCuda> dst(src.shape());
  convert_into(dst, src);
  return dst;
}

}  // namespace pdiff
