// pdiff/layers/norm.hpp — normalisation layers with replicated parameters.
//
// | layer          | parameters            | applies to                                         |
// |----------------|-----------------------|----------------------------------------------------|
// | RMSNorm        | weight (D)            | (..., D); per-head q/k norm = RMSNorm over head_dim on (B, S, H, D), optionally fused with RoPE |
// | LayerNorm      | weight, bias (D) or none (affine = false, FLUX.2) | (..., D)                  |
// | GroupNorm      | weight, bias (C)      | (B, C, ...)                                        |
// Norms act per token, so sequence and head sharding need no communication.
#pragma once

#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"

namespace pdiff {

template <class C>
struct RMSNorm {
  using tensor = typename C::tensor;
  std::int64_t dim = 0;
  float eps = 1e-6f;
  tensor weight;
  RMSNorm() = default;
  RMSNorm(std::int64_t d, float e) : dim(d), eps(e) {}
  void load(const Tensor<float, OnCpu>& w) {
    PDIFF_CHECK(w.numel() == dim, "RMSNorm: weight has ", w.numel(), " elements, the layer has dim ", dim);
    weight = to_ctx<C>(w.clone());
  }
  tensor operator()(const tensor& x) const { return weight.empty() ? rms_norm(x, eps) : rms_norm(x, weight, eps); }
  // A q/k norm followed by its rotary embedding, interleaved pairs (FLUX.2) or rotate-half (Llama/Qwen):
  // x (B, S, H, D), table rows = S. One pass over x on CUDA (rms_norm_rope_*); the same values as the norm
  // and then apply_rope_* on the CPU.
  tensor with_rope(const tensor& x, const RopeTable<typename C::backend>& rope, bool interleaved) const {
    return interleaved ? rms_norm_rope_interleaved(x, weight, eps, rope) : rms_norm_rope_half(x, weight, eps, rope);
  }
};

template <class C>
struct LayerNorm {
  using tensor = typename C::tensor;
  std::int64_t dim = 0;
  float eps = 1e-6f;
  bool affine = true;
  tensor weight, bias;
  LayerNorm() = default;
  LayerNorm(std::int64_t d, float e, bool with_affine) : dim(d), eps(e), affine(with_affine) {}
  void load(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    PDIFF_CHECK(affine, "LayerNorm: this norm has no affine parameters");
    PDIFF_CHECK(w.numel() == dim, "LayerNorm: weight has ", w.numel(), " elements, the layer has dim ", dim);
    weight = to_ctx<C>(w.clone());
    if (b) bias = to_ctx<C>(b->clone());
  }
  tensor operator()(const tensor& x) const { return affine ? layer_norm(x, weight, bias, eps) : layer_norm(x, eps); }
};

template <class C>
struct GroupNorm {
  using tensor = typename C::tensor;
  int groups = 32;
  std::int64_t channels = 0;
  float eps = 1e-6f;
  tensor weight, bias;
  GroupNorm() = default;
  GroupNorm(int g, std::int64_t c, float e) : groups(g), channels(c), eps(e) {}
  void load(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>& b) {
    PDIFF_CHECK(w.numel() == channels && b.numel() == channels, "GroupNorm: parameters have ", w.numel(), "/",
                b.numel(), " elements, the layer has ", channels, " channels");
    weight = to_ctx<C>(w.clone());
    bias = to_ctx<C>(b.clone());
  }
  tensor operator()(const tensor& x) const { return group_norm(x, groups, weight, bias, eps); }
};

}  // namespace pdiff
