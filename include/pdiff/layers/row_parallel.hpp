// pdiff/layers/row_parallel.hpp — RowParallel<C, A>: input features split over axis A.
//
// Rank r holds columns [r·in/P, (r+1)·in/P) of W (out, in); the bias is whole and added once, after
// the reduction. Packed inputs (FLUX.2's single-block to_out over [attention | mlp]) give part sizes:
// each part is split on its own and rank r's columns are [part₀ slice | part₁ slice | ...]. x: (..., in/P) → partial sums → all_reduce → (..., out), or with
// Reduce::scatter_seq a reduce_scatter along dimension 1 (B, S, D) → (B, S/P, D) when the next op
// wants a sharded sequence.
#pragma once

#include <vector>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

enum class Reduce { all_reduce, scatter_seq };

template <class C, Axis A = Axis::tp>
struct RowParallel {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  std::int64_t in = 0, out = 0;
  std::vector<std::int64_t> in_parts;  // packed input blocks; {in} when not packed
  bool has_bias = false;
  Reduce reduce = Reduce::all_reduce;
  detail::LinearCore<C> core;

  RowParallel() = default;
  RowParallel(std::int64_t in_features, std::int64_t out_features, bool bias, Reduce how = Reduce::all_reduce)
      : RowParallel(std::vector<std::int64_t>{in_features}, out_features, bias, how) {}
  RowParallel(std::vector<std::int64_t> packed_in, std::int64_t out_features, bool bias, Reduce how = Reduce::all_reduce)
      : out(out_features), in_parts(std::move(packed_in)), has_bias(bias), reduce(how) {
    for (auto p : in_parts) {
      even_range(p, parts, 0, "RowParallel: in_features");
      in += p;
    }
  }
  std::int64_t in_local() const { return in / parts; }

  ShardPlan weight_plan(int r) const {
    ShardPlan plan{Shape{out, in_local()}, 1, {}};
    std::int64_t base = 0;
    for (auto p : in_parts) {
      auto [b, e] = even_range(p, parts, r, "RowParallel: in_features");
      plan.slices.push_back({0, 1, base + b, base + e});
      base += p;
    }
    return plan;
  }
  ShardPlan bias_plan(int = 0) const { return {Shape{out}, 0, {{0, 0, 0, out}}}; }
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
