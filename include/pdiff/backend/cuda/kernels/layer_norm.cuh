// pdiff/backend/cuda/kernels/layer_norm.cuh — LayerNorm over the last dimension fused with the DiT
// modulation (mirrors backend/cpu/norm.hpp layer_norm followed by activation.hpp modulate).
//
// | case                            | x, out      | w, b          | shift, scale  | result                          |
// |---------------------------------|-------------|---------------|---------------|---------------------------------|
// | layer_norm, affine              | (B, S, D)   | (D), (D)      | nullptr       | LN(x)·w + b                     |
// | layer_norm, no affine (FLUX.2)  | (B, S, D)   | nullptr       | nullptr       | LN(x)                           |
// | layer_norm + modulate           | (B, S, D)   | any of above  | (B, D), (B, D)| (1 + scale[b])·(LN(x)·w + b) + shift[b] |
// LN(x) = (x − mean) / sqrt(var + eps), biased variance. Any of w, b, shift, scale may be nullptr
// (1, 0, 0, 0). T ∈ {float, bf16} for every pointer; statistics in fp32, two passes (mean, then
// Σ(x − mean)²) so a large mean does not cancel. out may equal x. A plain (rows, D) layer norm is
// B = 1, S = rows.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T, int N>
__device__ __forceinline__ void load_n(const T* p, int c, float (&v)[N]) {
  if constexpr (N == 1) v[0] = load_f(p + c);
  else VecIo<T>::load(p + c * N, v);
}

template <class T, int N>
__global__ void layer_norm_modulate_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                           const T* __restrict__ shift, const T* __restrict__ scale, T* out,
                                           std::int64_t rows, std::int64_t seq, int d, float eps) {
  __shared__ float red[32];
  const std::int64_t row = std::int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < rows;
  const std::int64_t r = valid ? row : 0;
  const T* xr = x + r * d;
  T* orow = out + r * d;
  const std::int64_t pb = (r / seq) * d;  // row of shift/scale: (B, D)
  const int chunks = d / N;
  float s = 0.0f;
  if (valid)
    for (int c = int(threadIdx.x); c < chunks; c += int(blockDim.x)) {
      float v[N];
      load_n<T, N>(xr, c, v);
#pragma unroll
      for (int i = 0; i < N; ++i) s += v[i];
    }
  const float mean = block_row_sum(s, red) / float(d);
  float ss = 0.0f;
  if (valid)
    for (int c = int(threadIdx.x); c < chunks; c += int(blockDim.x)) {
      float v[N];
      load_n<T, N>(xr, c, v);
#pragma unroll
      for (int i = 0; i < N; ++i) ss += (v[i] - mean) * (v[i] - mean);
    }
  const float inv = rsqrtf(block_row_sum(ss, red) / float(d) + eps);
  if (!valid) return;
  for (int c = int(threadIdx.x); c < chunks; c += int(blockDim.x)) {
    float v[N], t[N];
    load_n<T, N>(xr, c, v);
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = (v[i] - mean) * inv;
    if (w) {
      load_n<T, N>(w, c, t);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] *= t[i];
    }
    if (b) {
      load_n<T, N>(b, c, t);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] += t[i];
    }
    if (scale) {
      load_n<T, N>(scale + pb, c, t);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] *= 1.0f + t[i];
    }
    if (shift) {
      load_n<T, N>(shift + pb, c, t);
#pragma unroll
      for (int i = 0; i < N; ++i) v[i] += t[i];
    }
    if constexpr (N == 1) store_f(orow + c, v[0]);
    else VecIo<T>::store(orow + c * N, v);
  }
}
}  // namespace detail

// x, out: (B, S, D); w, b: (D) or nullptr; shift, scale: (B, D) or nullptr. All device pointers.
template <class T>
void launch_layer_norm_modulate(const T* x, const T* w, const T* b, const T* shift, const T* scale, T* out,
                                std::int64_t batch, std::int64_t seq, int d, float eps, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_layer_norm_modulate: T must be float or bf16");
  PDIFF_CHECK(d > 0 && batch >= 0 && seq >= 0, "layer_norm_modulate: shape (", batch, ", ", seq, ", ", d,
              ") must have B, S ≥ 0 and D > 0");
  PDIFF_CHECK(batch * seq == 0 || (x && out), "layer_norm_modulate: x and out must be device pointers, got null");
  PDIFF_CHECK(eps >= 0.0f, "layer_norm_modulate: eps (", eps, ") must be ≥ 0");
  const std::int64_t rows = batch * seq;
  if (rows == 0) return;
  constexpr int N = detail::VecIo<T>::n;
  bool vec = d % N == 0;
  for (const T* p : {x, w, b, shift, scale, static_cast<const T*>(out)})
    if (p && !detail::aligned16(p)) vec = false;
  const auto g = detail::row_geometry(vec ? d / N : d);
  const std::int64_t blocks = (rows + g.ty - 1) / g.ty;
  PDIFF_CHECK(blocks <= 0x7fffffff, "layer_norm_modulate: ", rows, " rows exceed the grid limit");
  if (vec)
    detail::layer_norm_modulate_kernel<T, N><<<unsigned(blocks), dim3(g.tx, g.ty), 0, stream>>>(
        x, w, b, shift, scale, out, rows, seq, d, eps);
  else
    detail::layer_norm_modulate_kernel<T, 1><<<unsigned(blocks), dim3(g.tx, g.ty), 0, stream>>>(
        x, w, b, shift, scale, out, rows, seq, d, eps);
  detail::check_launch("layer_norm_modulate");
}

// Plain LayerNorm of (rows, D): the modulate-free case.
template <class T>
void launch_layer_norm(const T* x, const T* w, const T* b, T* out, std::int64_t rows, int d, float eps,
                       cudaStream_t stream) {
  launch_layer_norm_modulate<T>(x, w, b, nullptr, nullptr, out, 1, rows, d, eps, stream);
}

}  // namespace pdiff::cuda
