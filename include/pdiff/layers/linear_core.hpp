// pdiff/layers/linear_core.hpp — the local part every linear layer shares: y = x·Wᵀ (+ b) on this
// rank's shard W (out_local, in_local). x: (..., in_local) → y: (..., out_local).
#pragma once

#include "pdiff/backend/cpu/activation.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/layers/shard.hpp"

namespace pdiff::detail {

struct LinearCore {
  Tensor<float, OnCpu> weight;  // (out_local, in_local)
  Tensor<float, OnCpu> bias;    // (out_local) or empty

  Tensor<float, OnCpu> matmul(const Tensor<float, OnCpu>& x) const {
    const std::int64_t in = weight.size(1), out = weight.size(0);
    PDIFF_CHECK(x.rank() >= 1 && x.size(-1) == in, "linear: input", x.shape(), " must end in in_features = ", in);
    Shape ys = x.shape();
    ys[-1] = out;
    Tensor<float, OnCpu> y(ys);
    const std::int64_t rows = x.numel() / in;
    Tensor<float, OnCpu> y2 = y.view({rows, out});
    gemm(x.view({rows, in}), weight, y2, {.trans_b = true});
    return y;
  }
  void add_bias(Tensor<float, OnCpu>& y) const {
    if (!bias.empty()) add_(y, bias);
  }
};

}  // namespace pdiff::detail
