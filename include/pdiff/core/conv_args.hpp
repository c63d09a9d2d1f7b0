// pdiff/core/conv_args.hpp — the arguments of conv2d, shared by the CPU and CUDA ops.
#pragma once

#include <cstdint>

#include "pdiff/core/error.hpp"
#include "pdiff/core/shape.hpp"

namespace pdiff {

// Stride and zero padding per side: Ho = (H + pad_top + pad_bottom − kh) / stride + 1 (likewise Wo).
struct Conv2dArgs {
  int stride = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  static Conv2dArgs same(int pad, int stride = 1) { return {stride, pad, pad, pad, pad}; }
};

// The sizes of conv2d(x (B, C, H, W), w (O, C, kh, kw), b (O) or empty): checked once for both backends.
struct Conv2dDims {
  std::int64_t B, C, H, W, O, kh, kw, Ho, Wo, K;  // K = C·kh·kw

  // bias_numel: 0 without a bias
  static Conv2dDims of(const Shape& x, const Shape& w, std::int64_t bias_numel, const Conv2dArgs& a) {
    PDIFF_CHECK(x.rank == 4 && w.rank == 4, "conv2d: x", x, " must be (B, C, H, W) and w", w, " (O, C, kh, kw)");
    Conv2dDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, 0};
    PDIFF_CHECK(w[1] == d.C, "conv2d: weight", w, " expects ", w[1], " input channels, x", x, " has ", d.C);
    PDIFF_CHECK(bias_numel == 0 || bias_numel == d.O, "conv2d: bias has ", bias_numel, " elements, the conv has ", d.O,
                " output channels");
    PDIFF_CHECK(a.stride >= 1, "conv2d: stride (", a.stride, ") must be >= 1");
    const std::int64_t hp = d.H + a.pad_top + a.pad_bottom, wp = d.W + a.pad_left + a.pad_right;
    PDIFF_CHECK(hp >= d.kh && wp >= d.kw, "conv2d: padded input ", hp, "x", wp, " is smaller than the kernel ", d.kh,
                "x", d.kw);
    d.Ho = (hp - d.kh) / a.stride + 1, d.Wo = (wp - d.kw) / a.stride + 1, d.K = d.C * d.kh * d.kw;
    return d;
  }
  // 1×1, stride 1, no padding: one GEMM on the input as (C, H·W)
  bool pointwise(const Conv2dArgs& a) const { return kh == 1 && kw == 1 && a.stride == 1 && Ho == H && Wo == W; }
};

}  // namespace pdiff
