// pdiff/layers/linear_core.hpp — the local part every linear layer shares: y = x·Wᵀ (+ b) on this
// rank's shard W (out_local, in_local), in C's backend and element type.
// x: (..., in_local) → y: (..., out_local).
#pragma once

#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/shard.hpp"

namespace pdiff::detail {

template <class C>
struct LinearCore {
  using tensor = typename C::tensor;
  tensor weight;  // (out_local, in_local)
  tensor bias;    // (out_local) or empty

  // Takes a shard read on the host (fp32) into C's backend and type.
  void set(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    weight = to_ctx<C>(w);
    if (b) bias = to_ctx<C>(*b);
  }

  tensor matmul(const tensor& x) const {
    const std::int64_t in = weight.size(1), out = weight.size(0);
    PDIFF_CHECK(x.rank() >= 1 && x.size(-1) == in, "linear: input", x.shape(), " must end in in_features = ", in);
    Shape ys = x.shape();
    ys[-1] = out;
    tensor y(ys);
    const std::int64_t rows = x.numel() / in;
    tensor y2 = y.view({rows, out});
    gemm(x.view({rows, in}), weight, y2, {.trans_b = true});
    return y;
  }
  void add_bias(tensor& y) const {
    if (!bias.empty()) add_(y, bias);
  }
};

}  // namespace pdiff::detail
