// pdiff/backend/cuda/kernels/rms_norm_rope.cuh — a q/k projection's per-head RMSNorm and its rotary
// embedding in one pass (mirrors backend/cpu/rope.hpp rms_norm_rope_half / _interleaved: rms_norm then rope).
//
// | x, out        | w          | cos, sin (fp32)          | result                                       |
// |---------------|------------|--------------------------|----------------------------------------------|
// | (B, S, H, D)  | (D) / null | (S, D) or (B, S, D)      | rope(x / sqrt(mean(x²) + eps) · w), per head |
// T ∈ {float, bf16}; statistics and rotation in fp32, one rounding at the store (the two ops round twice).
// A head row is D/n 16-byte vectors (n = 8 bf16 / 4 floats), one per thread: D/n threads per row, a power of
// two ≤ 32, so a row's reduction is warp shuffles and a rotate-half partner (D/2 away) sits in lane ^ D/2n.
// launch_rms_norm_rope returns false when the case does not fit (D, alignment): the caller runs the two ops.
// On an H200 at FLUX.2-dev's q and k (4608 tokens × 48 heads × 128, bf16) the two ops moved each tensor twice.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"
#include "pdiff/backend/cuda/kernels/rope.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T, bool Interleaved>
__global__ void rms_norm_rope_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ out,
                                     const float* __restrict__ cos, const float* __restrict__ sin, std::int64_t seq,
                                     std::int64_t heads, std::int64_t rows, int d, int tpr, bool batched, float eps) {
  using V = VecIo<T>;
  constexpr int n = V::n;
  const std::int64_t t = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t row = t / tpr;
  const int lane = int(t % tpr), j = lane * n;
  const bool valid = row < rows;  // invalid lanes still take part in the shuffles
  float v[n];
  if (valid) V::load(x + row * d + j, v);
  else
#pragma unroll
    for (int i = 0; i < n; ++i) v[i] = 0.0f;
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < n; ++i) ss += v[i] * v[i];
  for (int o = tpr / 2; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float inv = rsqrtf(ss / float(d) + eps);
  float g[n];
  if (w && valid) V::load(w + j, g);
  else
#pragma unroll
    for (int i = 0; i < n; ++i) g[i] = 1.0f;
#pragma unroll
  for (int i = 0; i < n; ++i) v[i] = v[i] * inv * g[i];
  float p[n];  // rotate-half: the partner vector, D/2 away in the row
  if constexpr (!Interleaved)
#pragma unroll
    for (int i = 0; i < n; ++i) p[i] = __shfl_xor_sync(0xffffffffu, v[i], tpr / 2);
  if (!valid) return;
  const std::int64_t tok = row / heads, s = tok % seq, b = tok / seq;
  const std::int64_t trow = ((batched ? b * seq : 0) + s) * d + j;
  float c[n], sn[n];
#pragma unroll
  for (int q = 0; q < n; q += 4) {
    const float4 c4 = *reinterpret_cast<const float4*>(cos + trow + q), s4 = *reinterpret_cast<const float4*>(sin + trow + q);
    c[q] = c4.x, c[q + 1] = c4.y, c[q + 2] = c4.z, c[q + 3] = c4.w;
    sn[q] = s4.x, sn[q + 1] = s4.y, sn[q + 2] = s4.z, sn[q + 3] = s4.w;
  }
  if constexpr (Interleaved) {
#pragma unroll
    for (int k = 0; k < n; k += 2) {
      const float re = v[k], im = v[k + 1];
      v[k] = re * c[k] - im * sn[k];
      v[k + 1] = im * c[k + 1] + re * sn[k + 1];
    }
  } else if (lane < tpr / 2) {  // x₁' = x₁·c − x₂·s
#pragma unroll
    for (int k = 0; k < n; ++k) v[k] = v[k] * c[k] - p[k] * sn[k];
  } else {  // x₂' = x₂·c + x₁·s
#pragma unroll
    for (int k = 0; k < n; ++k) v[k] = v[k] * c[k] + p[k] * sn[k];
  }
  V::store(out + row * d + j, v);
}
}  // namespace detail

// x, out: (B, S, H, D) device (out must not overlap x); w: (D) or nullptr; cos, sin: (S, D), or (B, S, D)
// with batched = true, fp32. False (nothing launched) when D/n is not a power of two in [2, 32] or a pointer
// is not 16-byte aligned.
template <class T>
bool launch_rms_norm_rope(const T* x, const T* w, T* out, const float* cos, const float* sin, std::int64_t batch,
                          std::int64_t seq, std::int64_t heads, int d, bool batched, float eps, RopePairs style,
                          cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_rms_norm_rope: T must be float or bf16");
  PDIFF_CHECK(eps >= 0.0f, "rms_norm_rope: eps (", eps, ") must be ≥ 0");
  constexpr int n = detail::VecIo<T>::n;
  const int tpr = d / n;
  const bool pow2 = tpr >= 2 && tpr <= 32 && (tpr & (tpr - 1)) == 0;
  if (d % n != 0 || !pow2 || !detail::aligned16(x) || !detail::aligned16(out) || (w && !detail::aligned16(w)) ||
      !detail::aligned16(cos) || !detail::aligned16(sin))
    return false;
  const std::int64_t rows = batch * seq * heads;
  if (rows == 0) return true;
  const std::int64_t blocks = (rows * tpr + 255) / 256;
  PDIFF_CHECK(blocks <= 0x7fffffff, "rms_norm_rope: ", rows, " rows exceed the grid limit");
  if (style == RopePairs::interleaved)
    detail::rms_norm_rope_kernel<T, true>
        <<<unsigned(blocks), 256, 0, stream>>>(x, w, out, cos, sin, seq, heads, rows, d, tpr, batched, eps);
  else
    detail::rms_norm_rope_kernel<T, false>
        <<<unsigned(blocks), 256, 0, stream>>>(x, w, out, cos, sin, seq, heads, rows, d, tpr, batched, eps);
  detail::check_launch("rms_norm_rope");
  return true;
}

}  // namespace pdiff::cuda
