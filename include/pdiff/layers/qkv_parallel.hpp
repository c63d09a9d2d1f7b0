// pdiff/layers/qkv_parallel.hpp — QKVParallel<C, A>: fused q/k/v projection split by heads.
//
// | case            | query heads per rank | kv heads per rank | kv head of rank r        |
// |-----------------|----------------------|-------------------|--------------------------|
// | MHA / GQA, Hkv ≥ P | H/P               | Hkv/P             | [r·Hkv/P, (r+1)·Hkv/P)   |
// | GQA, Hkv < P    | H/P                  | 1 (replicated)    | r / (P/Hkv)              |
// Sources are the three checkpoint tensors {Wq (H·D, hidden), Wk (Hkv·D, hidden), Wv}; the local
// weight is [q rows | k rows | v rows]. forward: x (B, S, hidden) → q (B, S, H/P, D), k and v
// (B, S, kv_local, D). Rules: H divisible by P; Hkv divisible by P or P by Hkv.
#pragma once

#include <utility>

#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis.hpp"

namespace pdiff {

template <class Tn>
struct Qkv {
  Tn q, k, v;  // (B, S, heads, head_dim)
};

// QKVParallel's shard arithmetic for a degree given as a value (compile-time or run-time).
struct QkvShards {
  std::int64_t hidden = 0, head_dim = 0, heads = 0, kv_heads = 0;
  bool has_bias = false;
  int degree = 1;

  constexpr QkvShards() = default;
  constexpr QkvShards(std::int64_t hidden_size, std::int64_t head_dim_, std::int64_t num_heads,
                      std::int64_t num_kv_heads, bool bias, int degree_)
      : hidden(hidden_size), head_dim(head_dim_), heads(num_heads), kv_heads(num_kv_heads), has_bias(bias),
        degree(degree_) {
    PDIFF_CHECK(degree >= 1 && heads % degree == 0, "QKVParallel: num_heads (", heads, ") must be divisible by the ",
                degree, " shards of its axis");
    PDIFF_CHECK(kv_heads > 0 && heads % kv_heads == 0, "QKVParallel: num_heads (", heads,
                ") must be a multiple of num_kv_heads (", kv_heads, ")");
    PDIFF_CHECK(kv_heads % degree == 0 || degree % kv_heads == 0, "QKVParallel: num_kv_heads (", kv_heads,
                ") and the shard count (", degree, ") must divide one another");
  }
  constexpr std::int64_t heads_local() const { return heads / degree; }
  constexpr std::int64_t kv_local() const { return kv_heads >= degree ? kv_heads / degree : 1; }
  constexpr std::int64_t out_local() const { return (heads_local() + 2 * kv_local()) * head_dim; }
  constexpr std::int64_t local_elements() const { return out_local() * (hidden + (has_bias ? 1 : 0)); }
  constexpr std::pair<std::int64_t, std::int64_t> kv_range(int r) const {
    if (kv_heads >= degree) return {r * kv_local(), (r + 1) * kv_local()};
    const std::int64_t h = r / (degree / kv_heads);
    return {h, h + 1};
  }

  ShardPlan plan(int r, bool for_bias) const {
    const std::int64_t hq = heads_local();
    auto [kb, ke] = kv_range(r);
    ShardPlan p;
    p.local = for_bias ? Shape{out_local()} : Shape{out_local(), hidden};
    p.cat_dim = 0;
    p.slices = {{0, 0, r * hq * head_dim, (r + 1) * hq * head_dim},
                {1, 0, kb * head_dim, ke * head_dim},
                {2, 0, kb * head_dim, ke * head_dim}};
    return p;
  }
  ShardPlan weight_plan(int r) const { return plan(r, false); }
  ShardPlan bias_plan(int r) const { return plan(r, true); }
  // {Wq (H·D, hidden), Wk (Hkv·D, hidden), Wv (Hkv·D, hidden)}; the biases without `hidden`.
  FullShapes weight_shapes() const {
    return {{heads * head_dim, hidden}, {kv_heads * head_dim, hidden}, {kv_heads * head_dim, hidden}};
  }
  FullShapes bias_shapes() const { return {{heads * head_dim}, {kv_heads * head_dim}, {kv_heads * head_dim}}; }
};

template <class C, Axis A = Axis::tp>
struct QKVParallel : QkvShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  detail::LinearCore<C> core;

  QKVParallel() = default;
  QKVParallel(std::int64_t hidden_size, std::int64_t head_dim_, std::int64_t num_heads, std::int64_t num_kv_heads,
              bool bias)
      : QkvShards(hidden_size, head_dim_, num_heads, num_kv_heads, bias, parts) {}

  // Rank r's shard from a weight source: `weights` = {Wq, Wk, Wv}, `biases` = {bq, bk, bv} when the layer has them.
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights, const TensorNames& biases = {}) {
    detail::load_shard(core, *this, source, r, weights, biases);
  }
  // Rank r's shard cut from full tensors in memory (tests).
  void load(int r, const Tensor<float, OnCpu>& wq, const Tensor<float, OnCpu>& wk, const Tensor<float, OnCpu>& wv,
            const Tensor<float, OnCpu>* bq = nullptr, const Tensor<float, OnCpu>* bk = nullptr,
            const Tensor<float, OnCpu>* bv = nullptr) {
    const Tensor<float, OnCpu>* w[] = {&wq, &wk, &wv};
    PDIFF_CHECK(!has_bias || (bq && bk && bv), "QKVParallel: the layer has biases but not all of q, k, v were given");
    core.set(materialize(weight_plan(r), w));
    if (has_bias) {
      const Tensor<float, OnCpu>* b[] = {bq, bk, bv};
      core.bias = to_ctx<C>(materialize(bias_plan(r), b));
    }
  }

  // One GEMM each for q, k and v on their rows of the fused weight: no narrow copies of a fused output.
  template <class R>
  Qkv<tensor> forward(R&, const tensor& x) const {
    PDIFF_CHECK(x.rank() == 3, "QKVParallel: x", x.shape(), " must be (B, S, hidden)");
    const std::int64_t B = x.size(0), S = x.size(1), hq = heads_local(), hk = kv_local(), D = head_dim;
    return {core.forward_rows(x, 0, hq * D).view({B, S, hq, D}),
            core.forward_rows(x, hq * D, (hq + hk) * D).view({B, S, hk, D}),
            core.forward_rows(x, (hq + hk) * D, (hq + 2 * hk) * D).view({B, S, hk, D})};
  }
};

}  // namespace pdiff
