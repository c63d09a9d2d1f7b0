// pdiff/models/mistral/plan.hpp — per-rank parameter memory of the Mistral text encoder.
//
// Counts with the layers' own shard arithmetic (every rank holds the same count), so the plan cannot
// drift from what load() reads: embedding (vocab padded to a multiple of tp), per layer
// q|k|v (kv heads replicated when fewer than tp), o, gate|up, down and two norms, the final norm,
// and the LM head when generate() is wanted (tied heads share the embedding).
#pragma once

#include <cstdint>

#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/vocab_parallel.hpp"
#include "pdiff/models/mistral/config.hpp"
#include "pdiff/models/param_plan.hpp"

namespace pdiff {

// The plan for TP degree tp: the layers' shard arithmetic (RowShards, QkvShards, ...) evaluated at
// that degree — no layout type instantiated, so any degree the shapes divide by is answered.
inline ParamPlan mistral_param_plan(const MistralConfig& cfg, int tp, bool with_lm_head = false) {
  PDIFF_CHECK(tp >= 1, "mistral_param_plan: tp (", tp, ") must be at least 1");
  const std::int64_t D = cfg.hidden_size, hd = cfg.head_dim, H = cfg.num_attention_heads,
                     Hk = cfg.num_key_value_heads, I = cfg.intermediate_size;
  ParamPlan p;
  p.sharded += VocabShards(cfg.vocab_size, D, tp).local_elements();
  const std::int64_t per_layer = QkvShards(D, hd, H, Hk, false, tp).local_elements() +
                                 RowShards({H * hd}, D, false, tp).local_elements() +
                                 MergedColumnShards(D, {I, I}, false, Sources::separate, tp).local_elements() +
                                 RowShards({I}, D, false, tp).local_elements();
  p.sharded += per_layer * cfg.num_hidden_layers;
  p.replicated += 2 * D * cfg.num_hidden_layers + D;  // the layers' norms, the final norm
  if (with_lm_head && !cfg.tie_word_embeddings) p.sharded += VocabShards(cfg.vocab_size, D, tp).local_elements();
  return p;
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
