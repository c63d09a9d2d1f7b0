// pdiff/core/conv_args.hpp — the arguments of conv2d, shared by the CPU and CUDA ops.
#pragma once

namespace pdiff {

// Stride and zero padding per side: Ho = (H + pad_top + pad_bottom − kh) / stride + 1 (likewise Wo).
struct Conv2dArgs {
  int stride = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  static Conv2dArgs same(int pad, int stride = 1) { return {stride, pad, pad, pad, pad}; }
};

}  // namespace pdiff
