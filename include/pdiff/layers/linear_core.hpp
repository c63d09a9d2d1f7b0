// pdiff/layers/linear_core.hpp — the local part every linear layer shares: y = x·Wᵀ (+ b) on this
// rank's shard W (out_local, in_local), in C's backend and element type.
// x: (..., in_local) → y: (..., out_local).
// On the CPU in fp32 a weight read from a bf16 checkpoint (every value exactly a bf16) is kept bf16
// (weight16; half the memory) and widened inside the GEMM (backend/cpu/bf16_weights.hpp): the same results.
// load_shard reads a BF16 checkpoint's shard in bf16 (Checkpoint::read_plan_bf16): no f32 copy on the way.
#pragma once

#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "pdiff/backend/cpu/bf16_weights.hpp"
#include "pdiff/backend/ops.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/io/shard_plan.hpp"

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
  // Takes a shard read in bf16 (BF16 checkpoint bytes as stored): bf16 weights go to C's backend as they are;
  // an fp32 CPU model keeps them bf16 under the automatic weight mode (as set() does for bf16-exact values),
  // else widens them (exact).
  void set_bf16(const Tensor<bf16, OnCpu>& w) {
    using T = typename C::value_type;
    if constexpr (cpu_f32) {
      if (cpu_weights() == CpuWeights::automatic && w.rank() == 2 && w.numel() > 0) {
        weight16 = w;
        weight = tensor();
      } else {
        weight = convert<float>(w);
        weight16 = {};
      }
    } else if constexpr (std::is_same_v<T, bf16>) {
      weight = to<typename C::backend>(w);
    } else {
      weight = to<typename C::backend>(convert<T>(w));
    }
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
    matmul_into(x.view({rows, in}), y2);
    return y;
  }
  // y (rows, out) = x (rows, in) · Wᵀ, into y's storage.
  void matmul_into(const tensor& x, tensor& y) const { matmul_rows_into(x, 0, out_features(), y); }
  // Output features [r0, r1) alone, bias included: x (..., in) → (..., r1 - r0) = x · W[r0, r1)ᵀ (+ b[r0, r1)).
  // One GEMM on rows r0..r1 of W (a view: W's rows are contiguous), so a fused projection's parts come
  // out as tensors of their own without narrow copies of the whole output (FLUX.2's q | k | v | mlp).
  tensor forward_rows(const tensor& x, std::int64_t r0, std::int64_t r1) const {
    const std::int64_t in = in_features();
    PDIFF_CHECK(0 <= r0 && r0 <= r1 && r1 <= out_features(), "linear: output rows [", r0, ", ", r1,
                ") out of range for ", out_features(), " features");
    PDIFF_CHECK(x.rank() >= 1 && x.size(-1) == in, "linear: input", x.shape(), " must end in in_features = ", in);
    Shape ys = x.shape();
    ys[-1] = r1 - r0;
    tensor y(ys);
    tensor y2 = y.view({x.numel() / in, r1 - r0});
    matmul_rows_into(x.view({x.numel() / in, in}), r0, r1, y2);
    if (!bias.empty()) add_(y, bias.slice(r0, r1));
    return y;
  }
  void add_bias(tensor& y) const {
    if (!bias.empty()) add_(y, bias);
  }

 private:
  void matmul_rows_into(const tensor& x, std::int64_t r0, std::int64_t r1, tensor& y) const {
    if constexpr (cpu_f32) {
      if (holds_bf16()) {
        gemm_bf16_weight(x, weight16.slice(r0, r1), y);
        return;
      }
    }
    gemm(x, weight.slice(r0, r1), y, {.trans_b = true});
  }
};

// core ← shard `plan` of the tensors `names` of a weight source. In bf16 all the way (read_plan_bf16, then
// set_bf16) where the checkpoint stores BF16 (exact for every target) or the layer computes in bf16 (it
// rounds anyway): no f32 copy of the shard on the host, half the bytes to a device. Else through f32.
// S needs read_plan only (MoE loads from sources that read no whole tensors).
template <class C, class S>
void set_shard(LinearCore<C>& core, const S& source, const ShardPlan& plan, const TensorNames& names,
               const FullShapes& shapes = {}) {
  if constexpr (requires { source.read_plan_bf16(plan, names, shapes); source.all_bf16(names); }) {
    if (std::is_same_v<typename C::value_type, bf16> || source.all_bf16(names)) {
      core.set_bf16(source.read_plan_bf16(plan, names, shapes));
      return;
    }
  }
  core.set(source.read_plan(plan, names, shapes));
}

// Reads rank r's shard of a linear layer from a weight source into `core`. G is the layer's shard
// geometry (weight_plan / bias_plan / weight_shapes / bias_shapes / has_bias); `weights` and `biases` name the
// checkpoint tensors in the order of its shapes, so a checkpoint that disagrees with the config is an error
// naming both shapes.
template <class C, class G, WeightSource S>
void load_shard(LinearCore<C>& core, const G& g, const S& source, int r, const TensorNames& weights,
                const TensorNames& biases) {
  const auto ws = g.weight_shapes();
  PDIFF_CHECK(weights.size() == ws.size(), "linear: ", ws.size(), " weight tensor(s) expected, ", weights.size(),
              " named", weights.empty() ? std::string() : " (" + weights[0] + ", ...)");
  PDIFF_CHECK(biases.empty() || g.has_bias, "linear: '", biases.empty() ? std::string() : biases[0],
              "' given but the layer of '", weights[0], "' has no bias");
  PDIFF_CHECK(!g.has_bias || biases.size() == g.bias_shapes().size(), "linear: the layer of '", weights[0],
              "' has a bias: ", g.bias_shapes().size(), " bias tensor(s) expected, ", biases.size(), " named");
  set_shard(core, source, g.weight_plan(r), weights, ws);
  if (g.has_bias) core.bias = to_ctx<C>(source.read_plan(g.bias_plan(r), biases, g.bias_shapes()));
}

// Group g of x's rows times layer g's weight, for layers of one shape (a MoE layer's experts):
// x (n, in) with rows[g] rows per group, Σ rows = n → (n, out). One grouped GEMM on CUDA; on the CPU
// one GEMM per non-empty group, written in place.
template <class C>
typename C::tensor grouped_matmul(std::span<const LinearCore<C>* const> layers, const typename C::tensor& x,
                                  std::span<const std::int64_t> rows) {
  PDIFF_CHECK(!layers.empty() && layers.size() == rows.size() && x.rank() == 2, "grouped_matmul: ", layers.size(),
              " layers, ", rows.size(), " row counts, x", x.shape());
  const std::int64_t out = layers[0]->out_features();
  typename C::tensor y({x.size(0), out});
  if constexpr (std::is_same_v<typename C::backend, OnCpu>) {
    std::int64_t at = 0;
    for (std::size_t g = 0; g < layers.size(); ++g) {
      PDIFF_CHECK(layers[g]->out_features() == out && layers[g]->in_features() == x.size(1), "grouped_matmul: layer ",
                  g, " is (", layers[g]->out_features(), ", ", layers[g]->in_features(), "), not (", out, ", ",
                  x.size(1), ")");
      if (rows[g] == 0) continue;
      auto yg = y.slice(at, at + rows[g]);
      layers[g]->matmul_into(x.slice(at, at + rows[g]), yg);
      at += rows[g];
    }
    PDIFF_CHECK(at == x.size(0), "grouped_matmul: the groups' ", at, " rows are not x's ", x.size(0));
  } else {
    std::vector<const typename C::tensor*> w(layers.size());
    for (std::size_t g = 0; g < layers.size(); ++g) w[g] = &layers[g]->weight;
    grouped_gemm_nt(x, std::span<const typename C::tensor* const>(w), rows, y);
  }
  return y;
}

}  // namespace pdiff::detail
