// pdiff/backend/cuda/kernels/gated_add.cuh — the DiT gated residual on CUDA (mirrors
// backend/cpu/activation.hpp gated_add).
//
// | case        | x (in place) | gate     | y          | result           |
// |-------------|--------------|----------|------------|------------------|
// | gated_add   | (B, S, D)    | (B, D)   | (B, S, D)  | x += gate[b]·y   |
// | gate null   | (B, S, D)    | nullptr  | (B, S, D)  | x += y           |
// T ∈ {float, bf16}, fp32 math, one rounding per element.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void gated_add_kernel(T* x, const T* __restrict__ gate, const T* y, std::int64_t seq, std::int64_t d,
                                 std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float g = gate ? load_f(gate + (i / (seq * d)) * d + i % d) : 1.0f;
    store_f(x + i, load_f(x + i) + g * load_f(y + i));
  }
}
}  // namespace detail

// x, y: (B, S, D), gate: (B, D) or nullptr; device.
template <class T>
void launch_gated_add(T* x, const T* gate, const T* y, std::int64_t batch, std::int64_t seq, std::int64_t d,
                      cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_gated_add: T must be float or bf16");
  PDIFF_CHECK(batch >= 0 && seq >= 0 && d > 0, "gated_add: shape (", batch, ", ", seq, ", ", d, ") is invalid");
  PDIFF_CHECK(batch * seq == 0 || (x && y), "gated_add: x and y must be device pointers, got null");
  const std::int64_t n = batch * seq * d;
  if (n == 0) return;
  detail::gated_add_kernel<T><<<detail::elementwise_blocks(n), 256, 0, stream>>>(x, gate, y, seq, d, n);
  detail::check_launch("gated_add");
}

}  // namespace pdiff::cuda
