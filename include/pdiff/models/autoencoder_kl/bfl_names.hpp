// pdiff/models/autoencoder_kl/bfl_names.hpp — the FLUX.1 autoencoder as Black Forest Labs saved it
// (`ae.safetensors` of FLUX.1 and BAGEL: encoder.down.i.block.j, mid.block_1 / attn_1, decoder.up.i ...)
// read by pdiff's AutoencoderKL (diffusers' names) through Checkpoint aliases.
//
// | BFL name                                  | diffusers name                                        |
// |-------------------------------------------|-------------------------------------------------------|
// | encoder.down.i.block.j.{norm1,conv1,...}  | encoder.down_blocks.i.resnets.j.{...}; nin_shortcut → conv_shortcut |
// | encoder.down.i.downsample.conv            | encoder.down_blocks.i.downsamplers.0.conv             |
// | {en,de}coder.mid.block_1 / block_2        | {en,de}coder.mid_block.resnets.0 / 1                  |
// | {en,de}coder.mid.attn_1.{norm,q,k,v,proj_out} | mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0} (1x1 convs read as Linear) |
// | decoder.up.i (i = n−1 first)              | decoder.up_blocks.(n−1−i)                             |
// | {en,de}coder.norm_out                     | {en,de}coder.conv_norm_out                            |
// There is no config file (BFL's code hard-codes it): bfl_autoencoder_config() reads the widths,
// levels and blocks from the tensor shapes; scaling/shift are FLUX.1's 0.3611 / 0.1159; no quant convs.
#pragma once

#include <string>

#include "pdiff/io/checkpoint.hpp"
#include "pdiff/models/autoencoder_kl/config.hpp"

namespace pdiff {

inline bool has_bfl_autoencoder(const Checkpoint& ck) { return ck.contains("decoder.mid.block_1.conv1.weight"); }

// Reads the config from the shapes and adds the diffusers-name aliases to `ck`.
inline AutoencoderKLConfig bfl_autoencoder_config(Checkpoint& ck) {
  PDIFF_CHECK(has_bfl_autoencoder(ck), "FLUX.1 autoencoder: '", ck.dir(),
              "' has no BFL autoencoder tensors (decoder.mid.block_1.conv1.weight)");
  AutoencoderKLConfig c;
  c.class_name = "AutoencoderKL";
  c.use_quant_conv = c.use_post_quant_conv = false;
  c.scaling_factor = 0.3611, c.shift_factor = 0.1159;
  c.in_channels = ck.shape("encoder.conv_in.weight").at(1);
  c.out_channels = ck.shape("decoder.conv_out.weight").at(0);
  c.latent_channels = ck.shape("decoder.conv_in.weight").at(1);
  PDIFF_CHECK(ck.shape("encoder.conv_out.weight").at(0) == 2 * c.latent_channels, "FLUX.1 autoencoder: encoder.conv_out",
              " must give 2 x ", c.latent_channels, " moments");
  c.block_out_channels.clear();
  for (int i = 0; ck.contains("encoder.down." + std::to_string(i) + ".block.0.conv1.weight"); ++i)
    c.block_out_channels.push_back(ck.shape("encoder.down." + std::to_string(i) + ".block.0.conv1.weight").at(0));
  const int n = int(c.block_out_channels.size());
  PDIFF_CHECK(n >= 1, "FLUX.1 autoencoder: no encoder.down.0 block");
  c.layers_per_block = 0;
  while (ck.contains("encoder.down.0.block." + std::to_string(c.layers_per_block) + ".conv1.weight")) ++c.layers_per_block;
  c.mid_block_add_attention = ck.contains("decoder.mid.attn_1.q.weight");
  c.sample_size = 1024;

  auto resnet = [&](const std::string& to, const std::string& from) {
    for (const char* p : {"norm1", "conv1", "norm2", "conv2"})
      for (const char* w : {".weight", ".bias"}) ck.alias(to + "." + p + w, from + "." + p + w);
    for (const char* w : {".weight", ".bias"}) ck.alias(to + ".conv_shortcut" + w, from + ".nin_shortcut" + w);
  };
  auto mid = [&](const std::string& part) {
    resnet(part + ".mid_block.resnets.0", part + ".mid.block_1");
    resnet(part + ".mid_block.resnets.1", part + ".mid.block_2");
    const std::string a = part + ".mid_block.attentions.0.", b = part + ".mid.attn_1.";
    for (const char* w : {"weight", "bias"}) {
      ck.alias(a + "group_norm." + w, b + "norm." + w);
      ck.alias(a + "to_q." + w, b + "q." + w, true);
      ck.alias(a + "to_k." + w, b + "k." + w, true);
      ck.alias(a + "to_v." + w, b + "v." + w, true);
      ck.alias(a + "to_out.0." + w, b + "proj_out." + w, true);
    }
  };
  for (int i = 0; i < n; ++i) {
    const std::string to = "encoder.down_blocks." + std::to_string(i), from = "encoder.down." + std::to_string(i);
    for (int j = 0; j < c.layers_per_block; ++j) resnet(to + ".resnets." + std::to_string(j), from + ".block." + std::to_string(j));
    for (const char* w : {".weight", ".bias"}) ck.alias(to + ".downsamplers.0.conv" + w, from + ".downsample.conv" + w);
  }
  for (int i = 0; i < n; ++i) {
    const std::string to = "decoder.up_blocks." + std::to_string(n - 1 - i), from = "decoder.up." + std::to_string(i);
    for (int j = 0; j <= c.layers_per_block; ++j) resnet(to + ".resnets." + std::to_string(j), from + ".block." + std::to_string(j));
    for (const char* w : {".weight", ".bias"}) ck.alias(to + ".upsamplers.0.conv" + w, from + ".upsample.conv" + w);
  }
  mid("encoder");
  mid("decoder");
  for (const char* part : {"encoder", "decoder"})
    for (const char* w : {".weight", ".bias"})
      ck.alias(std::string(part) + ".conv_norm_out" + w, std::string(part) + ".norm_out" + w);
  return c;
}

}  // namespace pdiff
