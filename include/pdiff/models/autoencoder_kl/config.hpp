// pdiff/models/autoencoder_kl/config.hpp — AutoencoderKLConfig: the vae/config.json of diffusers'
// AutoencoderKL (FLUX.1, used by BAGEL) and AutoencoderKLFlux2 (FLUX.2).
//
// | field                      | FLUX.1 AutoencoderKL | FLUX.2 AutoencoderKLFlux2        |
// |----------------------------|----------------------|----------------------------------|
// | block_out_channels         | 128, 256, 512, 512   | 128, 256, 512, 512               |
// | layers_per_block           | 2                    | 2                                |
// | latent_channels            | 16                   | 32 (then 2×2 patchify → 128)      |
// | scaling / shift factor     | 0.3611 / 0.1159      | none: BatchNorm running stats    |
// | quant / post-quant conv    | no / no              | yes / yes                        |
// Only the block types both use (DownEncoderBlock2D / UpDecoderBlock2D, SiLU, GroupNorm) are
// accepted; anything else is an error naming the field. Tiling: tile_sample = sample_size,
// tile_latent = sample_size / 2^(levels − 1), overlap 25% — as the reference computes them.
// Sizes are checked before use: positive, norm_num_groups dividing every level, at most 16 levels.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pdiff/io/config.hpp"

namespace pdiff {

struct AutoencoderKLConfig {
  static constexpr std::size_t max_levels = 16;
  std::string class_name = "AutoencoderKL";
  std::int64_t in_channels = 3, out_channels = 3, latent_channels = 16, layers_per_block = 2, norm_num_groups = 32;
  std::vector<std::int64_t> block_out_channels = {128, 256, 512, 512};
  std::vector<std::int64_t> decoder_block_out_channels;  // empty: block_out_channels
  bool use_quant_conv = true, use_post_quant_conv = true, mid_block_add_attention = true;
  std::int64_t sample_size = 1024;
  double scaling_factor = 1.0, shift_factor = 0.0;  // FLUX.1: z = scaling · (mean − shift)
  double batch_norm_eps = 1e-4;                      // FLUX.2
  std::vector<std::int64_t> patch_size;              // FLUX.2: (2, 2)
  float overlap_factor = 0.25f;

  bool is_flux2() const { return class_name == "AutoencoderKLFlux2"; }
  const std::vector<std::int64_t>& decoder_channels() const {
    return decoder_block_out_channels.empty() ? block_out_channels : decoder_block_out_channels;
  }
  // Image pixels per latent pixel: 2^(levels − 1) (8 for every real model).
  std::int64_t scale() const { return std::int64_t(1) << (block_out_channels.size() - 1); }
  std::int64_t tile_sample() const { return sample_size; }
  std::int64_t tile_latent() const { return sample_size / scale(); }

  static AutoencoderKLConfig from(const JsonConfig& c) {
    AutoencoderKLConfig v;
    v.class_name = c.get_or<std::string>("_class_name", "AutoencoderKL");
    PDIFF_CHECK(v.class_name == "AutoencoderKL" || v.class_name == "AutoencoderKLFlux2", "AutoencoderKLConfig ",
                c.where(), ": _class_name '", v.class_name, "' is not AutoencoderKL or AutoencoderKLFlux2");
    v.in_channels = c.get_or<std::int64_t>("in_channels", 3);
    v.out_channels = c.get_or<std::int64_t>("out_channels", 3);
    v.latent_channels = c.get_or<std::int64_t>("latent_channels", v.is_flux2() ? 32 : 4);
    v.layers_per_block = c.get_or<std::int64_t>("layers_per_block", v.is_flux2() ? 2 : 1);
    v.norm_num_groups = c.get_or<std::int64_t>("norm_num_groups", 32);
    v.block_out_channels = c.get_or<std::vector<std::int64_t>>("block_out_channels", v.block_out_channels);
    v.decoder_block_out_channels = c.get_or<std::vector<std::int64_t>>("decoder_block_out_channels", {});
    v.use_quant_conv = c.get_or<bool>("use_quant_conv", true);
    v.use_post_quant_conv = c.get_or<bool>("use_post_quant_conv", true);
    v.mid_block_add_attention = c.get_or<bool>("mid_block_add_attention", true);
    v.sample_size = c.get_or<std::int64_t>("sample_size", 1024);
    v.scaling_factor = c.get_or<double>("scaling_factor", 1.0);
    v.shift_factor = c.get_or<double>("shift_factor", 0.0);
    v.batch_norm_eps = c.get_or<double>("batch_norm_eps", 1e-4);
    if (v.is_flux2()) v.patch_size = c.get_or<std::vector<std::int64_t>>("patch_size", {2, 2});
    const auto check_types = [&](const char* key, const char* want) {
      if (c.is_null(key)) return;
      for (auto& t : c.get<std::vector<std::string>>(key))
        PDIFF_CHECK(t == want, "AutoencoderKLConfig ", c.where(), ": ", key, " entry '", t, "' is not supported (only ",
                    want, ")");
    };
    check_types("down_block_types", "DownEncoderBlock2D");
    check_types("up_block_types", "UpDecoderBlock2D");
    PDIFF_CHECK(c.get_or<std::string>("act_fn", "silu") == "silu", "AutoencoderKLConfig ", c.where(),
                ": act_fn must be silu");
    PDIFF_CHECK(!v.block_out_channels.empty() && v.decoder_channels().size() == v.block_out_channels.size(),
                "AutoencoderKLConfig ", c.where(), ": block_out_channels and decoder_block_out_channels must have the same "
                "number of levels");
    // scale() shifts by levels − 1: a 65-level list once shifted by 64
    PDIFF_CHECK(v.block_out_channels.size() <= max_levels, "AutoencoderKLConfig ", c.where(), ": block_out_channels has ",
                v.block_out_channels.size(), " levels, more than ", max_levels, " (every real VAE has 4)");
    PDIFF_CHECK(v.in_channels > 0 && v.out_channels > 0 && v.latent_channels > 0 && v.layers_per_block > 0 &&
                    v.sample_size > 0,
                "AutoencoderKLConfig ", c.where(), ": in_channels (", v.in_channels, "), out_channels (", v.out_channels,
                "), latent_channels (", v.latent_channels, "), layers_per_block (", v.layers_per_block,
                ") and sample_size (", v.sample_size, ") must be positive");
    PDIFF_CHECK(v.norm_num_groups > 0, "AutoencoderKLConfig ", c.where(), ": norm_num_groups (", v.norm_num_groups,
                ") must be positive");
    using Channels = const std::vector<std::int64_t>*;
    for (Channels list : {Channels(&v.block_out_channels), Channels(&v.decoder_channels())})
      for (auto ch : *list)
        PDIFF_CHECK(ch > 0 && ch % v.norm_num_groups == 0, "AutoencoderKLConfig ", c.where(), ": channels ", ch,
                    " must be positive and divisible by norm_num_groups (", v.norm_num_groups, ")");
    for (auto p : v.patch_size)
      PDIFF_CHECK(p > 0, "AutoencoderKLConfig ", c.where(), ": patch_size entries must be positive, got ", p);
    PDIFF_CHECK(v.sample_size % v.scale() == 0, "AutoencoderKLConfig ", c.where(), ": sample_size ", v.sample_size,
                " must be a multiple of the VAE factor ", v.scale());
    return v;
  }
  static AutoencoderKLConfig load(const std::filesystem::path& dir) {
    return from(JsonConfig::load(dir / "config.json"));
  }
};

}  // namespace pdiff
