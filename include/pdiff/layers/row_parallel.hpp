// pdiff/layers/row_parallel.hpp — RowParallel<C, A>: input features split over axis A.
//
// Rank r holds columns [r·in/P, (r+1)·in/P) of W (out, in); the bias is whole and added once, after
// the reduction. Packed inputs (FLUX.2's single-block to_out over [attention | mlp]) give part sizes:
// each part is split on its own and rank r's columns are [part₀ slice | part₁ slice | ...]. x: (..., in/P) → partial sums → all_reduce → (..., out), or with
// Reduce::scatter_seq a reduce_scatter along dimension 1 (B, S, D) → (B, S/P, D) when the next op
// wants a sharded sequence.
#pragma once

#include <utility>
#include <vector>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

enum class Reduce { all_reduce, scatter_seq };

// RowParallel's shard arithmetic for a degree given as a value (compile-time or run-time): what the layer
// uses with its axis's degree, and what parameter plans use for any TP degree without a layout type.
struct RowShards {
  std::int64_t in = 0, out = 0;
  std::vector<std::int64_t> in_parts;  // packed input blocks; {in} when not packed
  bool has_bias = false;
  int degree = 1;

  // Not constexpr: a std::vector member would need C++20 constexpr containers (libstdc++ 12+), and the
  // GPU machines' host compilers may be older.
  RowShards() = default;
  RowShards(std::vector<std::int64_t> packed_in, std::int64_t out_features, bool bias, int degree_)
      : out(out_features), in_parts(std::move(packed_in)), has_bias(bias), degree(degree_) {
    PDIFF_CHECK(degree >= 1, "RowParallel: the number of shards (", degree, ") must be at least 1");
    for (auto p : in_parts) {
      even_range(p, degree, 0, "RowParallel: in_features");
      in += p;
    }
  }
  std::int64_t in_local() const { return in / degree; }
  // Parameter elements of one rank (every rank holds the same count).
  std::int64_t local_elements() const { return out * in_local() + (has_bias ? out : 0); }

  ShardPlan weight_plan(int r) const {
    ShardPlan plan{Shape{out, in_local()}, 1, {}};
    std::int64_t base = 0;
    for (auto p : in_parts) {
      auto [b, e] = even_range(p, degree, r, "RowParallel: in_features");
      plan.slices.push_back({0, 1, base + b, base + e});
      base += p;
    }
    return plan;
  }
  ShardPlan bias_plan(int = 0) const { return {Shape{out}, 0, {{0, 0, 0, out}}}; }
  FullShapes weight_shapes() const { return {{out, in}}; }
  FullShapes bias_shapes() const { return {{out}}; }
};

template <class C, Axis A = Axis::tp>
struct RowParallel : RowShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  Reduce reduce = Reduce::all_reduce;
  detail::LinearCore<C> core;

  RowParallel() = default;
  RowParallel(std::int64_t in_features, std::int64_t out_features, bool bias, Reduce how = Reduce::all_reduce)
      : RowParallel(std::vector<std::int64_t>{in_features}, out_features, bias, how) {}
  RowParallel(std::vector<std::int64_t> packed_in, std::int64_t out_features, bool bias, Reduce how = Reduce::all_reduce)
      : RowShards(std::move(packed_in), out_features, bias, parts), reduce(how) {}

  // Rank r's shard from a weight source: `weights` = {W (out, in)}, `biases` = {b (out)} when the layer has one.
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights, const TensorNames& biases = {}) {
    detail::load_shard(core, *this, source, r, weights, biases);
  }
  // Rank r's shard cut from full tensors in memory (tests).
  void load(int r, const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    PDIFF_CHECK(!has_bias || b, "RowParallel: the layer has a bias but none was given");
    core.set(materialize(weight_plan(r), w));
    if (has_bias) core.bias = to_ctx<C>(materialize(bias_plan(), *b));
  }

  template <class R>
  tensor forward(R& rank, const tensor& x) const {
    auto y = core.matmul(x);
    if constexpr (parts > 1) {
      auto& comm = axis_comm<A>(rank);
      if (reduce == Reduce::scatter_seq) {
        PDIFF_CHECK(y.rank() == 3, "RowParallel: scatter_seq needs (B, S, D), got", y.shape());
        y = reduce_scatter(comm, y, 1);
      } else {
        all_reduce_(comm, y);
      }
    }
    core.add_bias(y);
    return y;
  }
};

}  // namespace pdiff
