// pdiff/models/bagel/plan.hpp — per-rank parameter memory of BAGEL-7B-MoT for TP<tp>: both weight sets
// of the Qwen2 MoT LLM split as BagelLlm<C> splits them (q/k/v by heads with kv heads max(1, kv/tp),
// o/down by rows, gate|up by columns, the embedding by vocabulary rows), plus what every rank holds
// whole (norms, timestep embedder, vae2llm / llm2vae, the latent position table). Not counted: the LM
// head (text generation is not run), the SigLIP tower (editing), the VAE (host fp32) and activations.
#pragma once

#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/vocab_parallel.hpp"
#include "pdiff/models/bagel/config.hpp"
#include "pdiff/models/param_plan.hpp"

namespace pdiff {

using BagelParamPlan = ParamPlan;

// The released model: Qwen2.5-7B dims (hidden 3584, 28 layers, 28 / 4 heads, FFN 18944, vocab 152064),
// max_latent_size 64, 16 latent channels in 2x2 patches.
inline BagelConfig bagel_released() { return BagelConfig{}; }

inline BagelParamPlan bagel_param_plan(const BagelConfig& c, int tp) {
  PDIFF_CHECK(tp >= 1 && c.num_attention_heads % tp == 0, "BAGEL plan: ", c.num_attention_heads,
              " heads over TP<", tp, ">");
  const std::int64_t H = c.hidden_size, D = c.head_dim(), NH = c.num_attention_heads, I = c.intermediate_size;
  BagelParamPlan p;
  // One weight set of a layer as BagelLlm::load shards it (the layers' own shard arithmetic at degree tp).
  const std::int64_t set = QkvShards(H, D, NH, c.num_key_value_heads, true, tp).local_elements() +
                           RowShards({NH * D}, H, false, tp).local_elements() +
                           MergedColumnShards(H, {I, I}, false, Sources::separate, tp).local_elements() +
                           RowShards({I}, H, false, tp).local_elements();
  p.sharded += c.num_hidden_layers * 2 * set;                 // understanding and generation weights
  p.replicated += c.num_hidden_layers * 2 * (2 * H + 2 * D);  // the two layer norms, q/k norms
  p.sharded += VocabShards(c.vocab_size, H, tp).local_elements();  // embed_tokens
  const std::int64_t PD = c.patch_latent_dim();
  p.replicated += 2 * H + (256 * H + H + H * H + H) + (PD * H + H) + (H * PD + PD) +
                  c.max_latent_size * c.max_latent_size * H;  // final norms, time embedder, vae2llm, llm2vae, pos table
  return p;
}

}  // namespace pdiff
