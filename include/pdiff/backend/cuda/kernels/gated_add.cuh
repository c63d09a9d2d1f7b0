// pdiff/backend/cuda/kernels/gated_add.cuh — the DiT gated residual on CUDA (mirrors
// backend/cpu/activation.hpp gated_add).
//
// | case        | x (in place) | gate     | y          | result           |
// |-------------|--------------|----------|------------|------------------|
// | gated_add   | (B, S, D)    | (B, D)   | (B, S, D)  | x += gate[b]·y   |
// | gate null   | (B, S, D)    | nullptr  | (B, S, D)  | x += y           |
// T ∈ {float, bf16}, fp32 math, one rounding per element. D a multiple of the 16-byte vector (8 bf16, 4
// floats) with aligned pointers: vector loads, one (b, s) row per grid row (no per-element division).
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
template <class T>
__global__ void gated_add_vec_kernel(T* x, const T* __restrict__ gate, const T* y, std::int64_t rows, std::int64_t seq,
                                     std::int64_t d) {
  using V = VecIo<T>;
  const std::int64_t dv = d / V::n;
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    T* xr = x + r * d;
    const T* yr = y + r * d;
    const T* gr = gate ? gate + (r / seq) * d : nullptr;
    for (std::int64_t c = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < dv;
         c += std::int64_t(gridDim.x) * blockDim.x) {
      float a[V::n], b[V::n], g[V::n];
      V::load(xr + c * V::n, a);
      V::load(yr + c * V::n, b);
      if (gr) V::load(gr + c * V::n, g);
#pragma unroll
      for (int i = 0; i < V::n; ++i) a[i] += (gr ? g[i] : 1.0f) * b[i];
      V::store(xr + c * V::n, a);
    }
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
  if (d % detail::VecIo<T>::n == 0 && detail::aligned16(x) && detail::aligned16(y) && (!gate || detail::aligned16(gate))) {
    const dim3 grid = detail::row_vector_grid(batch * seq, d / detail::VecIo<T>::n);
    detail::gated_add_vec_kernel<T><<<grid, 256, 0, stream>>>(x, gate, y, batch * seq, seq, d);
  } else {
    detail::gated_add_kernel<T><<<detail::elementwise_blocks(n), 256, 0, stream>>>(x, gate, y, seq, d, n);
  }
  detail::check_launch("gated_add");
}

}  // namespace pdiff::cuda
