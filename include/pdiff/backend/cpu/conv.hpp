// pdiff/backend/cpu/conv.hpp — 2-D convolution and the resampling ops of VAEs, on the CPU (fp32).
//
// | op                                  | x            | result                                           |
// |-------------------------------------|--------------|--------------------------------------------------|
// | conv2d(x, w, b, {stride, pads})     | (B, C, H, W) | (B, O, Ho, Wo); w (O, C, kh, kw), b (O) or empty  |
// |   case 1×1, stride 1, no padding    |              | one GEMM on x as (C, H·W): no copy               |
// |   case general                      |              | im2col of a band of output rows, one GEMM per band |
// | upsample_nearest2x(x)               | (B, C, H, W) | (B, C, 2H, 2W)                                   |
// | transpose_last2(x)                  | (B, M, N)    | (B, N, M): channel-major ↔ token-major           |
// | modulate_channels_(x, ss)           | (B, C, ...)  | in place x·(1 + scale[b, c]) + shift[b, c]; ss (B, 2C) fp32 = [scale | shift] |
// Ho = (H + pad_top + pad_bottom − kh) / stride + 1 (likewise Wo); padding is zeros. The im2col
// buffer of a band is kept under ~8 MiB, so a 3×3 conv over 128 channels at 1024² does not
// allocate a 4.5 GiB column matrix: memory stays O(output) as in the reference.
#pragma once

#include <algorithm>

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/blas.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/conv_args.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

inline Tensor<float, OnCpu> conv2d(const Tensor<float, OnCpu>& x, const Tensor<float, OnCpu>& w,
                                   const Tensor<float, OnCpu>& b, const Conv2dArgs& a = {}) {
  const Conv2dDims d = Conv2dDims::of(x.shape(), w.shape(), b.empty() ? 0 : b.numel(), a);
  const auto [B, C, H, W, O, kh, kw, Ho, Wo, K] = d;
  Tensor<float, OnCpu> out({B, O, Ho, Wo});

  // the weight as an (O, C·kh·kw) matrix times the input (pointwise) or its im2col band
  const bool pointwise = d.pointwise(a);
  const std::int64_t band = std::max<std::int64_t>(1, std::min(Ho, (std::int64_t(2) << 20) / std::max<std::int64_t>(1, K * Wo)));
  Tensor<float, OnCpu> col;
  if (!pointwise) col = Tensor<float, OnCpu>({K, band * Wo});

  for (std::int64_t bi = 0; bi < B; ++bi) {
    const float* xb = x.data() + bi * C * H * W;
    float* ob = out.data() + bi * O * Ho * Wo;
    if (pointwise) {
      detail::sgemm_rm(false, false, O, Ho * Wo, C, 1.0f, w.data(), K, xb, H * W, 0.0f, ob, Ho * Wo);
    } else {
      for (std::int64_t y0 = 0; y0 < Ho; y0 += band) {
        const std::int64_t rows = std::min(band, Ho - y0), n = rows * Wo;
        // col: (C·kh·kw, rows·Wo), row (c, i, j) holds x[c, y·s + i − pad_top, x·s + j − pad_left] or 0
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t i = 0; i < kh; ++i)
            for (std::int64_t j = 0; j < kw; ++j) {
              float* dst = col.data() + ((c * kh + i) * kw + j) * n;
              for (std::int64_t y = 0; y < rows; ++y) {
                const std::int64_t iy = (y0 + y) * a.stride + i - a.pad_top;
                float* d = dst + y * Wo;
                if (iy < 0 || iy >= H) {
                  std::fill(d, d + Wo, 0.0f);
                  continue;
                }
                const float* src = xb + (c * H + iy) * W;
                for (std::int64_t ox = 0; ox < Wo; ++ox) {
                  const std::int64_t ix = ox * a.stride + j - a.pad_left;
                  d[ox] = (ix >= 0 && ix < W) ? src[ix] : 0.0f;
                }
              }
            }
        detail::sgemm_rm(false, false, O, n, K, 1.0f, w.data(), K, col.data(), n, 0.0f, ob + y0 * Wo, Ho * Wo);
      }
    }
    if (!b.empty())
      for (std::int64_t o = 0; o < O; ++o) {
        float* p = ob + o * Ho * Wo;
        const float bo = b(o);
        for (std::int64_t i = 0; i < Ho * Wo; ++i) p[i] += bo;
      }
  }
  return out;
}

inline Tensor<float, OnCpu> upsample_nearest2x(const Tensor<float, OnCpu>& x) {
  PDIFF_CHECK(x.rank() == 4, "upsample_nearest2x: x", x.shape(), " must be (B, C, H, W)");
  const std::int64_t BC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  Tensor<float, OnCpu> out({x.size(0), x.size(1), 2 * H, 2 * W});
  for (std::int64_t p = 0; p < BC; ++p)
    for (std::int64_t y = 0; y < H; ++y) {
      const float* src = x.data() + (p * H + y) * W;
      float* d0 = out.data() + (p * 2 * H + 2 * y) * 2 * W;
      for (std::int64_t i = 0; i < W; ++i) d0[2 * i] = d0[2 * i + 1] = src[i];
      std::copy(d0, d0 + 2 * W, d0 + 2 * W);
    }
  return out;
}

inline Tensor<float, OnCpu> transpose_last2(const Tensor<float, OnCpu>& x) {
  PDIFF_CHECK(x.rank() == 3, "transpose_last2: x", x.shape(), " must be (B, M, N)");
  const std::int64_t B = x.size(0), M = x.size(1), N = x.size(2);
  Tensor<float, OnCpu> out({B, N, M});
  for (std::int64_t b = 0; b < B; ++b) {
    const float* src = x.data() + b * M * N;
    float* dst = out.data() + b * M * N;
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) dst[n * M + m] = src[m * N + n];
  }
  return out;
}

inline void modulate_channels_(Tensor<float, OnCpu>& x, const Tensor<float, OnCpu>& ss) {
  PDIFF_CHECK(x.rank() >= 2 && ss.numel() == 2 * x.size(0) * x.size(1), "modulate_channels_: x", x.shape(),
              " must be (B, C, ...) and scale/shift", ss.shape(), " (B, 2·C)");
  const std::int64_t B = x.size(0), Co = x.size(1), n = x.numel() / (B * Co);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t c = 0; c < Co; ++c) {
      const float scale = ss(b * 2 * Co + c), shift = ss(b * 2 * Co + Co + c);
      float* p = x.data() + (b * Co + c) * n;
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] * (1.0f + scale) + shift;
    }
}

// silu in place (the CPU op writes over x; elsewhere a new tensor replaces it)
inline void silu_(Tensor<float, OnCpu>& x) {
  for (auto& v : x.span()) v = silu(v);
}

}  // namespace pdiff
