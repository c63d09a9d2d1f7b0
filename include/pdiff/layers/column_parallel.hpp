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

template <class C, Axis A = Axis::tp>
struct ColumnParallel {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  std::int64_t in = 0, out = 0;
  bool has_bias = false, gather_output = false;
  detail::LinearCore<C> core;

  ColumnParallel() = default;
  ColumnParallel(std::int64_t in_features, std::int64_t out_features, bool bias, bool gather = false)
      : in(in_features), out(out_features), has_bias(bias), gather_output(gather) {
    even_range(out, parts, 0, "ColumnParallel: out_features");
  }
  std::int64_t out_local() const { return out / parts; }

  ShardPlan weight_plan(int r) const {
    auto [b, e] = even_range(out, parts, r, "ColumnParallel: out_features");
    return {Shape{e - b, in}, 0, {{0, 0, b, e}}};
  }
  ShardPlan bias_plan(int r) const {
    auto [b, e] = even_range(out, parts, r, "ColumnParallel: out_features");
    return {Shape{e - b}, 0, {{0, 0, b, e}}};
  }
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
