// The HunyuanImage-3.0 goldens' 3-D VAE output (tools/make_hunyuan_image3_goldens.py), shared by the CPU and
// CUDA tests: frame t of vae_decoder_out_all_frames (1, 3, T, H, W) as (1, 3, H, W).
#pragma once

#include <algorithm>

#include "pdiff/core/tensor.hpp"
#include "pdiff/io/safetensors.hpp"

namespace pdiff::test {

inline Tensor<float> hunyuan_golden_frame(const SafeTensors& g, std::int64_t t) {
  const auto all = g.read("vae_decoder_out_all_frames");
  PDIFF_CHECK(all.rank() == 5 && t < all.size(2), "hunyuan goldens: vae_decoder_out_all_frames", all.shape());
  const std::int64_t C = all.size(1), T = all.size(2), n = all.size(3) * all.size(4);
  Tensor<float> f({1, C, all.size(3), all.size(4)});
  for (std::int64_t c = 0; c < C; ++c) std::copy_n(all.data() + (c * T + t) * n, n, f.data() + c * n);
  return f;
}

}  // namespace pdiff::test
