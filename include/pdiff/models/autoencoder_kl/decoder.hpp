// pdiff/models/autoencoder_kl/decoder.hpp — VaeDecoder: diffusers' vae.Decoder.
//
//   z (B, latent, h, w) → conv_in → mid block → for each level i of the reversed channels:
//   layers_per_block + 1 resnets, then nearest 2× upsample + conv except on the last level →
//   GroupNorm → SiLU → conv_out → (B, out, h·f, w·f).
// Checkpoint names: decoder.conv_in, decoder.mid_block, decoder.up_blocks.{i}.resnets.{j},
// .upsamplers.0.conv, decoder.conv_norm_out, decoder.conv_out.
#pragma once

#include <vector>

#include "pdiff/models/autoencoder_kl/blocks.hpp"
#include "pdiff/models/autoencoder_kl/config.hpp"

namespace pdiff {

template <class C>
struct VaeDecoder {
  VaeConv<C> conv_in, conv_out;
  VaeMidBlock<C> mid;
  struct Level {
    std::vector<VaeResnet<C>> resnets;
    VaeConv<C> up;
    bool has_up = false;
  };
  std::vector<Level> levels;
  GroupNorm<C> norm_out;

  static VaeDecoder load(const Checkpoint& ck, const AutoencoderKLConfig& c, const std::string& p = "decoder") {
    const int g = int(c.norm_num_groups);
    const std::vector<std::int64_t> rev(c.decoder_channels().rbegin(), c.decoder_channels().rend());
    VaeDecoder d;
    d.conv_in = VaeConv<C>::load(ck, p + ".conv_in", c.latent_channels, rev[0], 3, Conv2dArgs::same(1));
    d.mid = VaeMidBlock<C>::load(ck, p + ".mid_block", rev[0], g, c.mid_block_add_attention);
    std::int64_t prev = rev[0];
    for (std::size_t i = 0; i < rev.size(); ++i) {
      Level l;
      const std::string bp = p + ".up_blocks." + std::to_string(i);
      for (std::int64_t j = 0; j <= c.layers_per_block; ++j) {
        l.resnets.push_back(VaeResnet<C>::load(ck, bp + ".resnets." + std::to_string(j), prev, rev[i], g));
        prev = rev[i];
      }
      l.has_up = i + 1 < rev.size();
      if (l.has_up) l.up = VaeConv<C>::load(ck, bp + ".upsamplers.0.conv", rev[i], rev[i], 3, Conv2dArgs::same(1));
      d.levels.push_back(std::move(l));
    }
    d.norm_out = load_vae_group_norm<C>(ck, p + ".conv_norm_out", rev.back(), g);
    d.conv_out = VaeConv<C>::load(ck, p + ".conv_out", rev.back(), c.out_channels, 3, Conv2dArgs::same(1));
    return d;
  }

  typename C::tensor operator()(const typename C::tensor& z) const {
    auto h = conv_in(z);
    h = mid(h);
    for (auto& l : levels) {
      for (auto& r : l.resnets) h = r(h);
      if (l.has_up) h = l.up(upsample_nearest2x(h));
    }
    h = norm_out(h);
    detail::vae_silu(h);
    return conv_out(h);
  }
};

}  // namespace pdiff
