// pdiff/models/autoencoder_kl/params.hpp — autoencoder_kl_params(config): the checkpoint name and
// shape of every parameter an AutoencoderKL(Flux2) of this config holds, in the reference's names.
// Used to count parameter bytes (planning) and to build random checkpoints of the real widths for
// benchmarks; a test checks it against the reference's own checkpoints.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pdiff/models/autoencoder_kl/config.hpp"

namespace pdiff {

using ParamList = std::vector<std::pair<std::string, std::vector<std::int64_t>>>;

namespace detail {
inline void vae_conv(ParamList& p, const std::string& n, std::int64_t in, std::int64_t out, std::int64_t k) {
  p.push_back({n + ".weight", {out, in, k, k}});
  p.push_back({n + ".bias", {out}});
}
inline void vae_vec(ParamList& p, const std::string& n, std::int64_t c) {
  p.push_back({n + ".weight", {c}});
  p.push_back({n + ".bias", {c}});
}
inline void vae_resnet(ParamList& p, const std::string& n, std::int64_t in, std::int64_t out) {
  vae_vec(p, n + ".norm1", in);
  vae_conv(p, n + ".conv1", in, out, 3);
  vae_vec(p, n + ".norm2", out);
  vae_conv(p, n + ".conv2", out, out, 3);
  if (in != out) vae_conv(p, n + ".conv_shortcut", in, out, 1);
}
inline void vae_mid(ParamList& p, const std::string& n, std::int64_t c, bool attn) {
  vae_resnet(p, n + ".resnets.0", c, c);
  if (attn) {
    const std::string a = n + ".attentions.0";
    vae_vec(p, a + ".group_norm", c);
    for (const char* l : {".to_q", ".to_k", ".to_v", ".to_out.0"}) {
      p.push_back({a + l + ".weight", {c, c}});
      p.push_back({a + l + ".bias", {c}});
    }
  }
  vae_resnet(p, n + ".resnets.1", c, c);
}
}  // namespace detail

inline ParamList autoencoder_kl_params(const AutoencoderKLConfig& c) {
  ParamList p;
  const auto& ch = c.block_out_channels;
  detail::vae_conv(p, "encoder.conv_in", c.in_channels, ch[0], 3);
  std::int64_t prev = ch[0];
  for (std::size_t i = 0; i < ch.size(); ++i) {
    const std::string b = "encoder.down_blocks." + std::to_string(i);
    for (std::int64_t j = 0; j < c.layers_per_block; ++j, prev = ch[i])
      detail::vae_resnet(p, b + ".resnets." + std::to_string(j), prev, ch[i]);
    if (i + 1 < ch.size()) detail::vae_conv(p, b + ".downsamplers.0.conv", ch[i], ch[i], 3);
  }
  detail::vae_mid(p, "encoder.mid_block", ch.back(), c.mid_block_add_attention);
  detail::vae_vec(p, "encoder.conv_norm_out", ch.back());
  detail::vae_conv(p, "encoder.conv_out", ch.back(), 2 * c.latent_channels, 3);

  const std::vector<std::int64_t> rev(c.decoder_channels().rbegin(), c.decoder_channels().rend());
  detail::vae_conv(p, "decoder.conv_in", c.latent_channels, rev[0], 3);
  detail::vae_mid(p, "decoder.mid_block", rev[0], c.mid_block_add_attention);
  prev = rev[0];
  for (std::size_t i = 0; i < rev.size(); ++i) {
    const std::string b = "decoder.up_blocks." + std::to_string(i);
    for (std::int64_t j = 0; j <= c.layers_per_block; ++j, prev = rev[i])
      detail::vae_resnet(p, b + ".resnets." + std::to_string(j), prev, rev[i]);
    if (i + 1 < rev.size()) detail::vae_conv(p, b + ".upsamplers.0.conv", rev[i], rev[i], 3);
  }
  detail::vae_vec(p, "decoder.conv_norm_out", rev.back());
  detail::vae_conv(p, "decoder.conv_out", rev.back(), c.out_channels, 3);
  if (c.use_quant_conv) detail::vae_conv(p, "quant_conv", 2 * c.latent_channels, 2 * c.latent_channels, 1);
  if (c.use_post_quant_conv) detail::vae_conv(p, "post_quant_conv", c.latent_channels, c.latent_channels, 1);
  if (c.is_flux2()) {
    const std::int64_t bn = c.latent_channels * c.patch_size[0] * c.patch_size[1];
    p.push_back({"bn.running_mean", {bn}});
    p.push_back({"bn.running_var", {bn}});
  }
  return p;
}

inline std::int64_t autoencoder_kl_param_count(const AutoencoderKLConfig& c) {
  std::int64_t n = 0;
  for (auto& [name, shape] : autoencoder_kl_params(c)) {
    std::int64_t k = 1;
    for (auto d : shape) k *= d;
    n += k;
  }
  return n;
}

}  // namespace pdiff
