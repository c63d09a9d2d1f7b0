// pdiff/layers/linear_core.hpp — the local part every linear layer shares: y = x·Wᵀ (+ b) on this
// rank's shard W (out_local, in_local), in C's backend and element type.
// x: (..., in_local) → y: (..., out_local).
// On the CPU in fp32 a weight read from a bf16 checkpoint (every value exactly a bf16) is kept bf16
// (weight16; half the memory) and widened inside the GEMM (backend/cpu/bf16_weights.hpp): the same results.
#pragma once

#include <type_traits>

#include "pdiff/backend/cpu/bf16_weights.hpp"
#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/shard.hpp"

namespace pdiff::detail {

template <class C>
struct LinearCore {
  using tensor = typename C::tensor;
  static constexpr bool cpu_f32 =
      std::is_same_v<typename C::backend, OnCpu> && std::is_same_v<typename C::value_type, float>;
  struct NoWeight16 {
    bool empty() const { return true; }
  };
  tensor weight;  // (out_local, in_local); empty when weight16 holds it
  [[no_unique_address]] std::conditional_t<cpu_f32, Tensor<bf16, OnCpu>, NoWeight16> weight16;
  tensor bias;    // (out_local) or empty

  // Takes a shard read on the host (fp32) into C's backend and type.
  void set(const Tensor<float, OnCpu>& w, const Tensor<float, OnCpu>* b = nullptr) {
    if constexpr (cpu_f32) {
      if (keep_bf16(w)) {
        weight16 = convert<bf16>(w);
        weight = tensor();
      } else {
        weight = w;
        weight16 = {};
      }
    } else {
      weight = to_ctx<C>(w);
    }
    if (b) bias = to_ctx<C>(*b);
  }
  bool holds_bf16() const { return !weight16.empty(); }
  std::int64_t out_features() const {
    if constexpr (cpu_f32) if (holds_bf16()) return weight16.size(0);
    return weight.size(0);
  }
  std::int64_t in_features() const {
    if constexpr (cpu_f32) if (holds_bf16()) return weight16.size(1);
    return weight.size(1);
  }

  tensor matmul(const tensor& x) const {
    const std::int64_t in = in_features(), out = out_features();
    PDIFF_CHECK(x.rank() >= 1 && x.size(-1) == in, "linear: input", x.shape(), " must end in in_features = ", in);
    Shape ys = x.shape();
    ys[-1] = out;
    tensor y(ys);
    const std::int64_t rows = x.numel() / in;
    tensor y2 = y.view({rows, out});
    if constexpr (cpu_f32) {
      if (holds_bf16()) {
        gemm_bf16_weight(x.view({rows, in}), weight16, y2);
        return y;
      }
    }
    gemm(x.view({rows, in}), weight, y2, {.trans_b = true});
    return y;
  }
  void add_bias(tensor& y) const {
    if (!bias.empty()) add_(y, bias);
  }
};

}  // namespace pdiff::detail
