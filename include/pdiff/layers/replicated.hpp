// pdiff/layers/replicated.hpp — Replicated<C>: a linear layer whose full weight is on every rank
// (small projections: timestep MLPs, modulation, vae2llm). No communication.
#pragma once

#include "pdiff/layers/linear_core.hpp"

namespace pdiff {

template <class C>
struct Replicated {
  using tensor = typename C::tensor;
  std::int64_t in = 0, out = 0;
  bool has_bias = false;
  detail::LinearCore<C> core;

  Replicated() = default;
  Replicated(std::int64_t in_features, std::int64_t out_features, bool bias)
      : in(in_features), out(out_features), has_bias(bias) {}

  ShardPlan weight_plan(int = 0) const { return {Shape{out, in}, 0, {{0, 0, 0, out}}}; }
  ShardPlan bias_plan(int = 0) const { return {Shape{out}, 0, {{0, 0, 0, out}}}; }
  FullShapes weight_shapes() const { return {{out, in}}; }
  FullShapes bias_shapes() const { return {{out}}; }
  std::int64_t local_elements() const { return out * (in + (has_bias ? 1 : 0)); }

  // The whole weight from a weight source: `weights` = {W (out, in)}, `biases` = {b (out)} when the layer has one.
  template <WeightSource S>
  void load(const S& source, const TensorNames& weights, const TensorNames& biases = {}) {
    detail::load_shard(core, *this, source, 0, weights, biases);
  }

  void load(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    PDIFF_CHECK(!has_bias || b, "Replicated: the layer has a bias but none was given");
    core.set(materialize(weight_plan(), w));
    if (has_bias) core.bias = to_ctx<C>(materialize(bias_plan(), *b));
  }
  template <class R>
  tensor forward(R&, const tensor& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
};

}  // namespace pdiff
