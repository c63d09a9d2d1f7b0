// pdiff/backend/cuda/kernels/rms_norm.cuh — RMSNorm over the last dimension on CUDA (mirrors
// backend/cpu/norm.hpp rms_norm).
//
// | case                        | x, out        | w        | result                         |
// |-----------------------------|---------------|----------|--------------------------------|
// | rms_norm with weight        | (rows, D)     | (D)      | x / sqrt(mean(x²) + eps) · w   |
// | rms_norm without weight     | (rows, D)     | nullptr  | x / sqrt(mean(x²) + eps)       |
// | per-head q/k norm           | (B·S·H, hd)   | (hd)     | the same with rows = heads     |
// T ∈ {float, bf16} for x, w and out; statistics in fp32. out may equal x (in place).
// One row per blockDim.x threads (blockDim.y rows per block); 16-byte vector loads when D and the
// pointers allow, element loads otherwise.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T, int N>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ w, T* out, std::int64_t rows, int d,
                                float eps) {
  __shared__ float red[32];
  const std::int64_t row = std::int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < rows;  // invalid threads still join the block reduction
  const T* xr = x + (valid ? row : 0) * d;
  T* orow = out + (valid ? row : 0) * d;
  const int chunks = d / N;
  float ss = 0.0f;
  if (valid)
    for (int c = int(threadIdx.x); c < chunks; c += int(blockDim.x)) {
      float v[N];
      if constexpr (N == 1) v[0] = load_f(xr + c);
      else VecIo<T>::load(xr + c * N, v);
#pragma unroll
      for (int i = 0; i < N; ++i) ss += v[i] * v[i];
    }
  ss = block_row_sum(ss, red);
  const float inv = rsqrtf(ss / float(d) + eps);
  if (!valid) return;
  for (int c = int(threadIdx.x); c < chunks; c += int(blockDim.x)) {
    float v[N], g[N];
    if constexpr (N == 1) {
      v[0] = load_f(xr + c);
      g[0] = w ? load_f(w + c) : 1.0f;
    } else {
      VecIo<T>::load(xr + c * N, v);
      if (w) VecIo<T>::load(w + c * N, g);
      else
        for (int i = 0; i < N; ++i) g[i] = 1.0f;
    }
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = v[i] * inv * g[i];
    if constexpr (N == 1) store_f(orow + c, v[0]);
    else VecIo<T>::store(orow + c * N, v);
  }
}
}  // namespace detail

// x, out: (rows, D) device; w: (D) device or nullptr (no weight).
template <class T>
void launch_rms_norm(const T* x, const T* w, T* out, std::int64_t rows, int d, float eps, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_rms_norm: T must be float or bf16");
  PDIFF_CHECK(d > 0 && rows >= 0, "rms_norm: shape (", rows, ", ", d, ") must have rows ≥ 0 and D > 0");
  PDIFF_CHECK(rows == 0 || (x && out), "rms_norm: x and out must be device pointers, got null");
  PDIFF_CHECK(eps >= 0.0f, "rms_norm: eps (", eps, ") must be ≥ 0");
  if (rows == 0) return;
  constexpr int N = detail::VecIo<T>::n;
  const bool vec = d % N == 0 && detail::aligned16(x) && detail::aligned16(out) && (!w || detail::aligned16(w));
  const auto g = detail::row_geometry(vec ? d / N : d);
  const std::int64_t blocks = (rows + g.ty - 1) / g.ty;
  PDIFF_CHECK(blocks <= 0x7fffffff, "rms_norm: ", rows, " rows exceed the grid limit");
  if (vec) detail::rms_norm_kernel<T, N><<<unsigned(blocks), dim3(g.tx, g.ty), 0, stream>>>(x, w, out, rows, d, eps);
  else detail::rms_norm_kernel<T, 1><<<unsigned(blocks), dim3(g.tx, g.ty), 0, stream>>>(x, w, out, rows, d, eps);
  detail::check_launch("rms_norm");
}

}  // namespace pdiff::cuda
