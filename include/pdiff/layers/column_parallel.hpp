// pdiff/layers/column_parallel.hpp — ColumnParallel<C, A>: output features split over axis A.
//
// Rank r of the axis holds rows [r·out/P, (r+1)·out/P) of W (out, in) and of the bias.
// x: (..., in), replicated → y: (..., out/P), or (..., out) when constructed with gather_output
// (an all_gather along the last dimension). With P = 1 it is a plain linear layer, no call made.
#pragma once

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

// ColumnParallel's shard arithmetic for a degree given as a value (compile-time or run-time).
struct ColumnShards {
  std::int64_t in = 0, out = 0;
  bool has_bias = false;
  int degree = 1;

  constexpr ColumnShards() = default;
  constexpr ColumnShards(std::int64_t in_features, std::int64_t out_features, bool bias, int degree_)
      : in(in_features), out(out_features), has_bias(bias), degree(degree_) {
    even_range(out, degree, 0, "ColumnParallel: out_features");
  }
  constexpr std::int64_t out_local() const { return out / degree; }
  constexpr std::int64_t local_elements() const { return out_local() * (in + (has_bias ? 1 : 0)); }

  ShardPlan weight_plan(int r) const {
    auto [b, e] = even_range(out, degree, r, "ColumnParallel: out_features");
    return {Shape{e - b, in}, 0, {{0, 0, b, e}}};
  }
  ShardPlan bias_plan(int r) const {
    auto [b, e] = even_range(out, degree, r, "ColumnParallel: out_features");
    return {Shape{e - b}, 0, {{0, 0, b, e}}};
  }
  FullShapes weight_shapes() const { return {{out, in}}; }
  FullShapes bias_shapes() const { return {{out}}; }
};

template <class C, Axis A = Axis::tp>
struct ColumnParallel : ColumnShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  bool gather_output = false;
  detail::LinearCore<C> core;

  ColumnParallel() = default;
  ColumnParallel(std::int64_t in_features, std::int64_t out_features, bool bias, bool gather = false)
      : ColumnShards(in_features, out_features, bias, parts), gather_output(gather) {}

  // Rank r's shard from a weight source: `weights` = {W (out, in)}, `biases` = {b (out)} when the layer has one.
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights, const TensorNames& biases = {}) {
    detail::load_shard(core, *this, source, r, weights, biases);
  }
  // Rank r's shard cut from full tensors in memory (tests).
  void load(int r, const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    PDIFF_CHECK(!has_bias || b, "ColumnParallel: the layer has a bias but none was given");
    core.set(materialize(weight_plan(r), w));
    if (has_bias) core.bias = to_ctx<C>(materialize(bias_plan(r), *b));
  }

  template <class R>
  tensor forward(R& rank, const tensor& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    if constexpr (parts > 1) {
      if (gather_output) return all_gather(axis_comm<A>(rank), y, -1);
    }
    return y;
  }
};

}  // namespace pdiff
