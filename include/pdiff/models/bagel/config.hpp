// pdiff/models/bagel/config.hpp — BagelConfig: what pdiff reads of a BAGEL-7B-MoT folder
// (official code: github ByteDance-Seed/Bagel, app.py, modeling/bagel/bagel.py, qwen2_navit.py).
//
// | source                         | fields                                                          |
// |--------------------------------|-----------------------------------------------------------------|
// | llm_config.json (Qwen2Config)  | vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, rms_norm_eps, rope_theta |
// | app.py (code, not a file)      | qk_norm on, layer_module Qwen2MoTDecoderLayer, latent_patch_size 2, max_latent_size 64 |
// | ema.safetensors shapes         | max_latent_size = sqrt(rows of latent_pos_embed.pos_embed); patch_latent_dim = vae2llm's inputs |
// | ae.safetensors shapes          | the FLUX.1 autoencoder (bfl_names.hpp): z channels, 8x down      |
// Released sizes (Qwen2.5-7B): hidden 3584, 28 layers, 28 / 4 heads (head dim 128), FFN 18944, vocab 152064.
#pragma once

#include <cmath>
#include <filesystem>

#include "pdiff/io/config.hpp"

namespace pdiff {

struct BagelConfig {
  std::int64_t vocab_size = 152064, hidden_size = 3584, intermediate_size = 18944, num_hidden_layers = 28,
               num_attention_heads = 28, num_key_value_heads = 4;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 1000000.0;
  std::int64_t latent_patch_size = 2, max_latent_size = 64, latent_channels = 16, vae_downsample = 8;

  std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
  std::int64_t patch_latent_dim() const { return latent_patch_size * latent_patch_size * latent_channels; }
  std::int64_t latent_downsample() const { return vae_downsample * latent_patch_size; }  // pixels per token side

  static BagelConfig from_llm(const JsonConfig& j) {
    BagelConfig c;
    c.vocab_size = j.get<std::int64_t>("vocab_size");
    c.hidden_size = j.get<std::int64_t>("hidden_size");
    c.intermediate_size = j.get<std::int64_t>("intermediate_size");
    c.num_hidden_layers = j.get<std::int64_t>("num_hidden_layers");
    c.num_attention_heads = j.get<std::int64_t>("num_attention_heads");
    c.num_key_value_heads = j.get_or<std::int64_t>("num_key_value_heads", c.num_attention_heads);
    c.rms_norm_eps = float(j.get_or<double>("rms_norm_eps", 1e-6));
    c.rope_theta = j.get_or<double>("rope_theta", 1000000.0);
    c.check();
    return c;
  }

  void check() const {
    PDIFF_CHECK(vocab_size > 0 && hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0,
                "BAGEL: llm_config.json sizes must be positive");
    PDIFF_CHECK(num_attention_heads > 0 && hidden_size % num_attention_heads == 0, "BAGEL: hidden_size (", hidden_size,
                ") must be divisible by num_attention_heads (", num_attention_heads, ")");
    PDIFF_CHECK(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0, "BAGEL: num_attention_heads (",
                num_attention_heads, ") must be a multiple of num_key_value_heads (", num_key_value_heads, ")");
    PDIFF_CHECK(head_dim() % 2 == 0, "BAGEL: head dim (", head_dim(), ") must be even for RoPE");
  }
};

}  // namespace pdiff
