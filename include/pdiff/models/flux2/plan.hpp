// pdiff/models/flux2/plan.hpp — per-rank parameter memory of the FLUX.2 transformer (and, with the
// Mistral plan, of the whole dev pipeline), plus an activation estimate for a resolution.
//
// Counts with the layers' own shard arithmetic at degree tp (RowShards, QkvShards, MergedColumnShards),
// so the plan cannot drift from what Flux2Transformer::load reads, for any tp the shapes divide by.
// Replicated on every rank: timestep/guidance MLPs, the three modulation linears, x/context embedders,
// norm_out, proj_out, q/k norms.
// Activations: the largest live set of one single-stream block over the joint sequence, per rank
// (sequence split over ulysses·ring, heads/MLP split over tp) — an estimate, not a measurement.
#pragma once

#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/sequence.hpp"
#include "pdiff/models/flux2/config.hpp"
#include "pdiff/models/mistral/plan.hpp"

namespace pdiff {

inline ParamPlan flux2_param_plan(const Flux2Config& cfg, int tp) {
  const std::int64_t D = cfg.inner_dim(), M = cfg.mlp_hidden(), hd = cfg.attention_head_dim,
                     H = cfg.num_attention_heads, T = cfg.timestep_guidance_channels;
  PDIFF_CHECK(tp >= 1 && H % tp == 0, "Flux2 plan: num_attention_heads (", H, ") must be divisible by tp (", tp, ")");
  ParamPlan p;
  const std::int64_t tmlp = T * D + D * D;
  p.replicated += tmlp * (cfg.guidance_embeds ? 2 : 1);
  p.replicated += D * 6 * D * 2 + D * 3 * D;                               // modulations
  p.replicated += cfg.in_channels * D + cfg.joint_attention_dim * D;       // embedders
  p.replicated += D * 2 * D + D * cfg.out_channels;                        // norm_out, proj_out
  const std::int64_t qkv = QkvShards(D, hd, H, H, false, tp).local_elements();
  const std::int64_t out = RowShards({D}, D, false, tp).local_elements();
  const std::int64_t ff = MergedColumnShards(D, {M, M}, false, Sources::fused, tp).local_elements() +
                          RowShards({M}, D, false, tp).local_elements();
  p.sharded += cfg.num_layers * 2 * (qkv + out + ff);
  p.replicated += cfg.num_layers * 4 * hd + cfg.num_single_layers * 2 * hd;  // q/k norms
  const std::int64_t single = MergedColumnShards(D, {D, D, D, M, M}, false, Sources::fused, tp).local_elements() +
                              RowShards({D, M}, D, false, tp).local_elements();
  p.sharded += cfg.num_single_layers * single;
  return p;
}

// Bytes of the largest live activation set of one single-stream block per rank, for an image of
// width×height with `text_tokens` text tokens: the joint input, its norm, the fused projection
// [q|k|v|gate|up] sharded by tp, the attention output and the MLP activation, over one sequence-parallel
// chunk: S padded to a multiple of ulysses·ring, divided by it.
inline std::int64_t flux2_activation_bytes(const Flux2Config& cfg, std::int64_t width, std::int64_t height,
                                           std::int64_t text_tokens, int tp, int seq, int bytes_per_element) {
  const std::int64_t S = (width / 16) * (height / 16) + text_tokens, s = sp_padded_length(S, seq) / seq;
  const std::int64_t D = cfg.inner_dim(), M = cfg.mlp_hidden();
  const std::int64_t per_token = 2 * D + (3 * D + 2 * M) / tp + D / tp + M / tp;
  return s * per_token * bytes_per_element;
}

// FLUX.2-dev's transformer/config.json.
inline Flux2Config flux2_dev() { return Flux2Config{}; }

}  // namespace pdiff
