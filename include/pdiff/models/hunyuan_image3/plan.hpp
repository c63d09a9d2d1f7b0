// pdiff/models/hunyuan_image3/plan.hpp — per-rank parameter memory of HunyuanImage-3.0 for a layout
// (tp, ep): the transformer as MoE<C> and HunyuanAttention<C> shard it — attention and dense MLPs over
// tp, routed experts E/ep whole per rank with their intermediate further split over tp/ep when ep
// divides tp, the shared expert over tp — plus what every rank holds whole (wte, routers, norms, the UNet
// parts, timestep embedders). Not counted: the VAE decoder (whole on every rank, used once at the end) and
// activations.
#pragma once

#include "pdiff/models/hunyuan_image3/config.hpp"
#include "pdiff/models/param_plan.hpp"

namespace pdiff {

using HunyuanParamPlan = ParamPlan;

// The released model (SPEC.md: hidden 4096, 32 layers, 32 heads / 8 KV of 128, 64 experts top-8 of 3072,
// one shared expert, vocab 133120, UNet width 1024, 32 latent channels).
inline HunyuanImage3Config hunyuan_image3_released() { return HunyuanImage3Config{}; }

inline HunyuanParamPlan hunyuan_image3_param_plan(const HunyuanImage3Config& c, int tp, int ep) {
  PDIFF_CHECK(tp >= 1 && ep >= 1 && (tp % ep == 0 || ep % tp == 0), "HunyuanImage-3.0 plan: EP<", ep, "> and TP<",
              tp, "> must nest");
  PDIFF_CHECK(c.num_experts % ep == 0, "HunyuanImage-3.0 plan: ", c.num_experts, " experts over EP<", ep, ">");
  const std::int64_t H = c.hidden_size, D = c.attention_head_dim, NH = c.num_attention_heads,
                     KVH = c.num_key_value_heads, split = ep > tp ? 1 : tp / ep;
  HunyuanParamPlan p;
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    p.sharded += ((NH + 2 * KVH) * D * H + NH * D * H) / tp;  // qkv_proj, o_proj
    p.replicated += 2 * H + 2 * D;                           // the layer's norms, q/k norms
    if (c.is_moe(i)) {
      const auto m = c.moe(std::size_t(i));
      p.sharded += m.experts / ep * 3 * H * m.intermediate / split + 3 * H * m.shared_intermediate / tp;
      p.replicated += m.experts * H;  // router
    } else {
      p.sharded += 3 * H * c.intermediate_size / tp;
    }
  }
  const std::int64_t P = c.patch_embed_hidden_dim, C = c.latent_channels, T = 256 * H + H + H * H + H;
  p.replicated += c.vocab_size * H + 3 * T;                                            // wte, 3 timestep embedders
  p.replicated += (C * P * 9 + P) + (P * 2 + H * P * 9 + H + 2 * H * H + 2 * H * 2 + H * H * 9 + H + H * P + H);  // UNetDown
  p.replicated += (H * 2 + P * H * 9 + P + 2 * P * H + 2 * P + P * 2 + P * P * 9 + P + P * H + P) + P * 2 + C * P * 9 + C;  // UNetUp
  return p;
}

}  // namespace pdiff
