// pdiff/models/autoencoder_kl/encoder.hpp — VaeEncoder: diffusers' vae.Encoder with double_z.
//
//   x (B, in, H, W) → conv_in → for each level i: layers_per_block resnets (→ ch[i]), then a
//   stride-2 downsample except on the last level → mid block → GroupNorm → SiLU → conv_out
//   → (B, 2·latent, H/f, W/f): the mean and log-variance of the posterior, f = 2^(levels−1).
// Checkpoint names: encoder.conv_in, encoder.down_blocks.{i}.resnets.{j}, .downsamplers.0.conv,
// encoder.mid_block, encoder.conv_norm_out, encoder.conv_out.
#pragma once

#include <vector>

#include "pdiff/models/autoencoder_kl/blocks.hpp"
#include "pdiff/models/autoencoder_kl/config.hpp"

namespace pdiff {

template <class C>
struct VaeEncoder {
  VaeConv<C> conv_in, conv_out;
  struct Level {
    std::vector<VaeResnet<C>> resnets;
    VaeConv<C> down;
    bool has_down = false;
  };
  std::vector<Level> levels;
  VaeMidBlock<C> mid;
  GroupNorm<C> norm_out;

  static VaeEncoder load(const Checkpoint& ck, const AutoencoderKLConfig& c, const std::string& p = "encoder") {
    const int g = int(c.norm_num_groups);
    const auto& ch = c.block_out_channels;
    VaeEncoder e;
    e.conv_in = VaeConv<C>::load(ck, p + ".conv_in", c.in_channels, ch[0], 3, Conv2dArgs::same(1));
    std::int64_t prev = ch[0];
    for (std::size_t i = 0; i < ch.size(); ++i) {
      Level l;
      const std::string bp = p + ".down_blocks." + std::to_string(i);
      for (std::int64_t j = 0; j < c.layers_per_block; ++j) {
        l.resnets.push_back(VaeResnet<C>::load(ck, bp + ".resnets." + std::to_string(j), prev, ch[i], g));
        prev = ch[i];
      }
      l.has_down = i + 1 < ch.size();
      // Downsample2D with padding 0 pads (left 0, right 1, top 0, bottom 1) before a stride-2 conv
      if (l.has_down) l.down = VaeConv<C>::load(ck, bp + ".downsamplers.0.conv", ch[i], ch[i], 3, {2, 0, 1, 0, 1});
      e.levels.push_back(std::move(l));
    }
    e.mid = VaeMidBlock<C>::load(ck, p + ".mid_block", ch.back(), g, c.mid_block_add_attention);
    e.norm_out = load_vae_group_norm<C>(ck, p + ".conv_norm_out", ch.back(), g);
    e.conv_out = VaeConv<C>::load(ck, p + ".conv_out", ch.back(), 2 * c.latent_channels, 3, Conv2dArgs::same(1));
    return e;
  }

  typename C::tensor operator()(const typename C::tensor& x) const {
    auto h = conv_in(x);
    for (auto& l : levels) {
      for (auto& r : l.resnets) h = r(h);
      if (l.has_down) h = l.down(h);
    }
    h = mid(h);
    h = norm_out(h);
    detail::vae_silu(h);
    return conv_out(h);
  }
};

}  // namespace pdiff
