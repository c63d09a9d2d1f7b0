// pdiff/backend/cuda/kernels/swiglu.cuh — SwiGLU on CUDA (mirrors backend/cpu/activation.hpp swiglu).
//
// | case    | x                        | out          | result                        |
// |---------|--------------------------|--------------|-------------------------------|
// | swiglu  | (rows, 2F) = [gate | up] | (rows, F)    | silu(x[:, :F]) · x[:, F:]     |
// T ∈ {float, bf16}, math in fp32. out must not overlap x (its rows are half as long).
#pragma once

#include "pdiff/backend/cuda/kernels/activation.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void swiglu_kernel(const T* __restrict__ x, T* __restrict__ out, std::int64_t rows, std::int64_t f) {
  const std::int64_t n = rows * f;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / f, c = i % f;
    const T* xr = x + r * 2 * f;
    store_f(out + i, silu_f(load_f(xr + c)) * load_f(xr + f + c));
  }
}
}  // namespace detail

// x: (rows, 2F), out: (rows, F), device.
template <class T>
void launch_swiglu(const T* x, T* out, std::int64_t rows, std::int64_t f, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_swiglu: T must be float or bf16");
  PDIFF_CHECK(rows >= 0 && f > 0, "swiglu: shape (", rows, ", 2·", f, ") must have rows ≥ 0 and F > 0");
  PDIFF_CHECK(rows == 0 || (x && out), "swiglu: x and out must be device pointers, got null");
  if (rows == 0) return;
  detail::swiglu_kernel<T><<<detail::elementwise_blocks(rows * f), 256, 0, stream>>>(x, out, rows, f);
  detail::check_launch("swiglu");
}

}  // namespace pdiff::cuda
