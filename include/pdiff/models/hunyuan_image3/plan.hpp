// pdiff/models/hunyuan_image3/plan.hpp — per-rank parameter memory of HunyuanImage-3.0 for a layout
// (tp, ep): the transformer as MoE<C> and HunyuanAttention<C> shard it — attention and dense MLPs over
// tp, routed experts E/ep whole per rank with their intermediate further split over tp/ep when ep
// divides tp, the shared expert over tp — plus what every rank holds whole (wte, routers, norms, the UNet
// parts, timestep embedders). Not counted: the VAE decoder (whole on every rank, used once at the end).
// hunyuan_image3_activation_bytes: the activation estimate of a denoising step, per rank.
#pragma once

#include <algorithm>

#include "pdiff/layers/moe.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/sequence.hpp"
#include "pdiff/models/hunyuan_image3/config.hpp"
#include "pdiff/models/hunyuan_image3/shards.hpp"
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
  const std::int64_t H = c.hidden_size, D = c.attention_head_dim, NH = c.num_attention_heads;
  const HunyuanQkvShards qkv(c, tp);  // the attention layer's own arithmetic
  HunyuanParamPlan p;
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
    // qkv_proj: this rank's KV heads, each with its query group ([q×G, k, v] rows); o_proj RowParallel
    p.sharded += qkv.local_elements() + RowShards({NH * D}, H, false, tp).local_elements();
    p.replicated += 2 * H + 2 * D;  // the layer's norms, q/k norms
    if (c.is_moe(i)) {
      const MoeShards moe(c.moe(std::size_t(i)), tp, ep);  // the MoE layer's own arithmetic
      p.sharded += moe.sharded_elements();
      p.replicated += moe.replicated_elements();
    } else {
      p.sharded += 3 * H * c.intermediate_size / tp;  // dense SwiGLU, intermediate over tp
    }
  }
  const std::int64_t P = c.patch_embed_hidden_dim, C = c.latent_channels, T = 256 * H + H + H * H + H;
  p.replicated += c.vocab_size * H + 3 * T;                                            // wte, 3 timestep embedders
  p.replicated += (C * P * 9 + P) + (P * 2 + H * P * 9 + H + 2 * H * H + 2 * H * 2 + H * H * 9 + H + H * P + H);  // UNetDown
  p.replicated += (H * 2 + P * H * 9 + P + 2 * P * H + 2 * P + P * 2 + P * P * 9 + P + P * H + P) + P * 2 + C * P * 9 + C;  // UNetUp
  return p;
}

// Bytes per rank of the largest live activation set of one denoising step — an estimate, not a
// measurement: one layer's working set over the rank's chunk of the sequence (`sequence_tokens`: prompt,
// conditioning tokens, image tokens and <eoi>; padded to a multiple of seq = ulysses·ring and split): the
// residual and its norm, q|k|v and the attention output over tp, the MoE's top-k copies of each token
// with their [gate; up] and SwiGLU rows (on average: the rows of the rank's E/ep experts, intermediate over
// tp/ep when ep divides tp; with dispatch, ep > tp, the rows of its TP rank's 1/tp of the tokens) and the
// shared expert's; plus the K/V cache of `cached_tokens` (the prompt) in every layer for each of the
// `branches` this rank runs.
inline std::int64_t hunyuan_image3_activation_bytes(const HunyuanImage3Config& c, std::int64_t sequence_tokens,
                                                    std::int64_t cached_tokens, int tp, int ep, int seq, int branches,
                                                    int bytes_per_element) {
  PDIFF_CHECK(tp >= 1 && ep >= 1 && seq >= 1 && branches >= 0, "HunyuanImage-3.0 activation estimate: tp (", tp,
              "), ep (", ep, ") and seq (", seq, ") must be at least 1");
  const std::int64_t s = sp_padded_length(sequence_tokens, seq) / seq;
  const std::int64_t H = c.hidden_size, D = c.attention_head_dim, NH = c.num_attention_heads,
                     KVH = c.num_key_value_heads;
  std::int64_t mlp = 3 * c.intermediate_size / tp;  // a dense layer's [gate; up] and SwiGLU rows
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
    if (c.is_moe(i)) {
      const MoeShards moe(c.moe(std::size_t(i)), tp, ep);
      // top-k rows per token, of which a rank runs those of its E/ep experts (1/ep on average), or with
      // dispatch (ep > tp) those its TP rank's 1/tp of the tokens sends and receives (k/tp per token)
      const std::int64_t rows = moe.cfg.top_k * (2 * H + 3 * moe.cfg.intermediate / moe.split());
      mlp = std::max(mlp, rows / (MoeShards::dispatch_for(tp, ep) ? tp : ep) + 3 * moe.cfg.shared_intermediate / tp);
    }
  const std::int64_t per_token = 2 * H + (NH + 2 * KVH) * D / tp + NH * D / tp + mlp;
  const std::int64_t cache = c.num_hidden_layers * cached_tokens * 2 * std::max<std::int64_t>(1, KVH / tp) * D;
  return (s * per_token + branches * cache) * bytes_per_element;
}

}  // namespace pdiff
