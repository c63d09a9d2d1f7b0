// pdiff/models/flux2/config.hpp — Flux2Config: diffusers' transformer/config.json of
// Flux2Transformer2DModel (FLUX.2-dev, klein-4B, klein-9B, or tiny test models).
//
// | field                       | dev    | klein-4B | klein-9B |
// |-----------------------------|--------|----------|----------|
// | num_layers (double-stream)  | 8      | 5        | 8        |
// | num_single_layers           | 48     | 20       | 24       |
// | num_attention_heads × 128   | 48     | 24       | 32       |
// | joint_attention_dim         | 15360  | 7680     | 12288    |
// | guidance_embeds             | true   | false    | false    |
// Others: patch_size 1, in_channels 128, mlp_ratio 3, axes_dims_rope (32,32,32,32), rope_theta 2000, eps 1e-6.
// Bounds: every size and inner_dim (heads × head_dim) at most 2^20, layer counts at most 4096, so every
// product the model and its plan form (at most ~2^62 elements) fits in int64 — real models are far below.
#pragma once

#include <filesystem>
#include <vector>

#include "pdiff/io/config.hpp"

namespace pdiff {

struct Flux2Config {
  static constexpr std::int64_t max_size = std::int64_t(1) << 20, max_layers = 4096;
  std::int64_t patch_size = 1, in_channels = 128, out_channels = 128, num_layers = 8, num_single_layers = 48;
  std::int64_t attention_head_dim = 128, num_attention_heads = 48, joint_attention_dim = 15360;
  std::int64_t timestep_guidance_channels = 256;
  double mlp_ratio = 3.0, rope_theta = 2000.0;
  std::vector<int> axes_dims_rope = {32, 32, 32, 32};
  float eps = 1e-6f;
  bool guidance_embeds = true;

  std::int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  std::int64_t mlp_hidden() const { return std::int64_t(double(inner_dim()) * mlp_ratio); }

  static Flux2Config from(const JsonConfig& c) {
    Flux2Config f;
    f.patch_size = c.get_or<std::int64_t>("patch_size", 1);
    f.in_channels = c.get_or<std::int64_t>("in_channels", 128);
    f.out_channels = c.get_or<std::int64_t>("out_channels", f.in_channels);
    f.num_layers = c.get_or<std::int64_t>("num_layers", 8);
    f.num_single_layers = c.get_or<std::int64_t>("num_single_layers", 48);
    f.attention_head_dim = c.get_or<std::int64_t>("attention_head_dim", 128);
    f.num_attention_heads = c.get_or<std::int64_t>("num_attention_heads", 48);
    f.joint_attention_dim = c.get_or<std::int64_t>("joint_attention_dim", 15360);
    f.timestep_guidance_channels = c.get_or<std::int64_t>("timestep_guidance_channels", 256);
    f.mlp_ratio = c.get_or<double>("mlp_ratio", 3.0);
    f.rope_theta = c.get_or<double>("rope_theta", 2000.0);
    f.axes_dims_rope = c.get_or<std::vector<int>>("axes_dims_rope", {32, 32, 32, 32});
    f.eps = float(c.get_or<double>("eps", 1e-6));
    f.guidance_embeds = c.get_or<bool>("guidance_embeds", true);
    PDIFF_CHECK(f.patch_size == 1, "Flux2Config ", c.where(), ": patch_size ", f.patch_size,
                " is not supported (FLUX.2 uses 1)");
    PDIFF_CHECK(f.in_channels > 0 && f.out_channels > 0 && f.num_layers >= 0 && f.num_single_layers >= 0 &&
                    f.attention_head_dim > 0 && f.num_attention_heads > 0 && f.joint_attention_dim > 0 &&
                    f.timestep_guidance_channels > 0 && f.mlp_ratio > 0 && f.mlp_ratio <= 64,
                "Flux2Config ", c.where(), ": sizes must be positive (in_channels ", f.in_channels, ", out_channels ",
                f.out_channels, ", attention_head_dim ", f.attention_head_dim, ", num_attention_heads ",
                f.num_attention_heads, ", joint_attention_dim ", f.joint_attention_dim, ", timestep_guidance_channels ",
                f.timestep_guidance_channels, ", mlp_ratio ", f.mlp_ratio, " (at most 64); layer counts ", f.num_layers, ", ",
                f.num_single_layers, ")");
    // the plan multiplies size by size by layer count: bounded here, before inner_dim() multiplies
    for (auto [name, v] : {std::pair{"in_channels", f.in_channels}, {"out_channels", f.out_channels},
                           {"attention_head_dim", f.attention_head_dim}, {"num_attention_heads", f.num_attention_heads},
                           {"joint_attention_dim", f.joint_attention_dim},
                           {"timestep_guidance_channels", f.timestep_guidance_channels}})
      PDIFF_CHECK(v <= max_size, "Flux2Config ", c.where(), ": ", name, " (", v, ") must be at most ", max_size);
    PDIFF_CHECK(f.num_layers <= max_layers && f.num_single_layers <= max_layers, "Flux2Config ", c.where(),
                ": layer counts (", f.num_layers, ", ", f.num_single_layers, ") must be at most ", max_layers);
    PDIFF_CHECK(f.num_attention_heads * f.attention_head_dim <= max_size, "Flux2Config ", c.where(),
                ": inner_dim = num_attention_heads × attention_head_dim (", f.num_attention_heads, " × ",
                f.attention_head_dim, ") must be at most ", max_size);
    // each axis is positive and even (RoPE rotates pairs); summed in int64, one axis at a time, so no overflow
    std::int64_t rope_dims = 0;
    for (int d : f.axes_dims_rope) {
      PDIFF_CHECK(d > 0 && d % 2 == 0 && d <= f.attention_head_dim, "Flux2Config ", c.where(), ": axes_dims_rope entry ",
                  d, " must be positive, even and at most attention_head_dim (", f.attention_head_dim, ")");
      rope_dims += d;
    }
    PDIFF_CHECK(rope_dims == f.attention_head_dim, "Flux2Config ", c.where(), ": axes_dims_rope sum to ", rope_dims,
                " but attention_head_dim is ", f.attention_head_dim);
    return f;
  }
  static Flux2Config load(const std::filesystem::path& dir) { return from(JsonConfig::load(dir / "config.json")); }
};

}  // namespace pdiff
