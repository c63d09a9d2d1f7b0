// pdiff/models/mistral/plan.hpp — per-rank parameter memory of the Mistral text encoder.
//
// Counts the shapes the layers' own ShardPlans give for TP rank 0 (the largest shard), so the plan
// cannot drift from what load() reads: embedding (vocab padded to a multiple of tp), per layer
// q|k|v (kv heads replicated when fewer than tp), o, gate|up, down and two norms, the final norm,
// and the LM head when generate() is wanted (tied heads share the embedding).
#pragma once

#include <cstdint>
#include <type_traits>

#include "pdiff/models/mistral/text_encoder.hpp"
#include "pdiff/models/param_plan.hpp"

namespace pdiff {

template <int TPd>
ParamPlan mistral_param_plan(const MistralConfig& cfg, bool with_lm_head = false) {
  using C = Ctx<Layout<TP<TPd>, OnCpu>>;
  const std::int64_t D = cfg.hidden_size, hd = cfg.head_dim, H = cfg.num_attention_heads,
                     Hk = cfg.num_key_value_heads, I = cfg.intermediate_size;
  ParamPlan p;
  p.sharded += VocabParallelEmbedding<C>(cfg.vocab_size, D).weight_plan(0).local.numel();
  const std::int64_t per_layer = QKVParallel<C>(D, hd, H, Hk, false).weight_plan(0).local.numel() +
                                 RowParallel<C>(H * hd, D, false).weight_plan(0).local.numel() +
                                 MergedColumnParallel<C>(D, {I, I}, false, Sources::separate).weight_plan(0).local.numel() +
                                 RowParallel<C>(I, D, false).weight_plan(0).local.numel();
  p.sharded += per_layer * cfg.num_hidden_layers;
  p.replicated += 2 * D * cfg.num_hidden_layers + D;  // the layers' norms, the final norm
  if (with_lm_head && !cfg.tie_word_embeddings)
    p.sharded += VocabParallelLMHead<C>(cfg.vocab_size, D).weight_plan(0).local.numel();
  return p;
}

namespace detail {
// Calls plan(std::integral_constant<int, tp>) for a run-time TP degree among 1, 2, 4, 8.
template <class F>
ParamPlan plan_for_tp(int tp, const char* what, F plan) {
  switch (tp) {
    case 1: return plan(std::integral_constant<int, 1>{});
    case 2: return plan(std::integral_constant<int, 2>{});
    case 4: return plan(std::integral_constant<int, 4>{});
    case 8: return plan(std::integral_constant<int, 8>{});
  }
  throw Error(cat(what, ": tp ", tp, " is not one of 1, 2, 4, 8"));
}
}  // namespace detail

// The plan for a run-time TP degree among 1, 2, 4, 8.
inline ParamPlan mistral_param_plan(const MistralConfig& cfg, int tp, bool with_lm_head = false) {
  return detail::plan_for_tp(tp, "mistral_param_plan",
                             [&](auto t) { return mistral_param_plan<decltype(t)::value>(cfg, with_lm_head); });
}

// Mistral-Small-3.1-24B's text_config (the FLUX.2-dev text encoder).
inline MistralConfig mistral_small_3_1_24b() {
  MistralConfig c;
  c.vocab_size = 131072;
  c.hidden_size = 5120;
  c.intermediate_size = 32768;
  c.num_hidden_layers = 40;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 131072;
  c.rope_theta = 1e9;
  c.rms_norm_eps = 1e-5f;
  return c;
}

}  // namespace pdiff
