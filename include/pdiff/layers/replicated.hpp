// pdiff/layers/replicated.hpp — Replicated<Ctx>: a linear layer whose full weight is on every rank
// (small projections: timestep MLPs, modulation, vae2llm). No communication.
#pragma once

#include "pdiff/layers/linear_core.hpp"

namespace pdiff {

template <class Ctx>
struct Replicated {
  std::int64_t in = 0, out = 0;
  bool has_bias = false;
  detail::LinearCore core;

  Replicated() = default;
  Replicated(std::int64_t in_features, std::int64_t out_features, bool bias)
      : in(in_features), out(out_features), has_bias(bias) {}

  ShardPlan weight_plan(int = 0) const { return {Shape{out, in}, 0, {{0, 0, 0, out}}}; }
  ShardPlan bias_plan(int = 0) const { return {Shape{out}, 0, {{0, 0, 0, out}}}; }

  void load(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    core.weight = materialize(weight_plan(), w);
    if (has_bias) {
      PDIFF_CHECK(b, "Replicated: the layer has a bias but none was given");
      core.bias = materialize(bias_plan(), *b);
    }
  }
  template <class R>
  Tensor<float, OnCpu> forward(R&, const Tensor<float, OnCpu>& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
};

}  // namespace pdiff
