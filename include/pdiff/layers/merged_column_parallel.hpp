// pdiff/layers/merged_column_parallel.hpp — MergedColumnParallel<C, A>: several column-parallel
// outputs fused into one GEMM, each part split over axis A on its own (parts may differ in size).
//
// | sources                          | example                                      |
// |----------------------------------|----------------------------------------------|
// | Separate: one tensor per part    | Mistral gate_proj, up_proj → [gate | up]     |
// | Fused: one tensor, parts stacked | FLUX.2 linear_in [gate; up], to_qkv_mlp_proj [q; k; v; mlp] |
// Local output: [part₀ slice | part₁ slice | ...], part i of width sizes[i]/P. x: (..., in).
#pragma once

#include <numeric>
#include <utility>
#include <vector>

#include "pdiff/layers/linear_core.hpp"
#include "pdiff/parallel/axis.hpp"

namespace pdiff {

enum class Sources { separate, fused };

// MergedColumnParallel's shard arithmetic for a degree given as a value (compile-time or run-time).
struct MergedColumnShards {
  std::int64_t in = 0;
  std::vector<std::int64_t> sizes;
  bool has_bias = false;
  Sources sources = Sources::separate;
  int degree = 1;

  // Not constexpr: see RowShards (a std::vector member).
  MergedColumnShards() = default;
  MergedColumnShards(std::int64_t in_features, std::vector<std::int64_t> part_sizes, bool bias, Sources src,
                     int degree_)
      : in(in_features), sizes(std::move(part_sizes)), has_bias(bias), sources(src), degree(degree_) {
    PDIFF_CHECK(degree >= 1, "MergedColumnParallel: the number of shards (", degree, ") must be at least 1");
    for (auto s : sizes) even_range(s, degree, 0, "MergedColumnParallel: part size");
  }
  std::int64_t out() const { return std::accumulate(sizes.begin(), sizes.end(), std::int64_t(0)); }
  std::int64_t out_local() const { return out() / degree; }
  std::int64_t local_elements() const { return out_local() * (in + (has_bias ? 1 : 0)); }
  // Column offset of part i inside the local output.
  std::int64_t part_offset(std::size_t i) const {
    std::int64_t o = 0;
    for (std::size_t j = 0; j < i; ++j) o += sizes[j] / degree;
    return o;
  }

  ShardPlan plan(int r, bool for_bias) const {
    ShardPlan p;
    p.local = for_bias ? Shape{out_local()} : Shape{out_local(), in};
    std::int64_t base = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      auto [b, e] = even_range(sizes[i], degree, r, "MergedColumnParallel: part size");
      if (sources == Sources::separate) p.slices.push_back({int(i), 0, b, e});
      else p.slices.push_back({0, 0, base + b, base + e});
      base += sizes[i];
    }
    return p;
  }
  ShardPlan weight_plan(int r) const { return plan(r, false); }
  ShardPlan bias_plan(int r) const { return plan(r, true); }
  // Separate sources: one (size_i, in) tensor per part; fused: one (Σ sizes, in).
  FullShapes weight_shapes() const { return shapes(true); }
  FullShapes bias_shapes() const { return shapes(false); }

 private:
  FullShapes shapes(bool weight) const {
    FullShapes f;
    if (sources == Sources::fused) f.push_back({out()});
    else
      for (auto s : sizes) f.push_back({s});
    if (weight)
      for (auto& s : f) s.push_back(in);
    return f;
  }
};

template <class C, Axis A = Axis::tp>
struct MergedColumnParallel : MergedColumnShards {
  using tensor = typename C::tensor;
  static constexpr int parts = C::layout::degree(A);
  detail::LinearCore<C> core;

  MergedColumnParallel() = default;
  MergedColumnParallel(std::int64_t in_features, std::vector<std::int64_t> part_sizes, bool bias, Sources src)
      : MergedColumnShards(in_features, std::move(part_sizes), bias, src, parts) {}

  // Rank r's shard from a weight source: `weights` names one tensor per part (separate) or the one fused
  // tensor, `biases` likewise when the layer has them.
  template <WeightSource S>
  void load(const S& source, int r, const TensorNames& weights, const TensorNames& biases = {}) {
    detail::load_shard(core, *this, source, r, weights, biases);
  }
  // Rank r's shard cut from full tensors in memory (tests).
  void load(int r, std::span<const Tensor<float, OnCpu>* const> w,
            std::span<const Tensor<float, OnCpu>* const> b = {}) {
    PDIFF_CHECK(!has_bias || !b.empty(), "MergedColumnParallel: the layer has a bias but none was given");
    core.set(materialize(weight_plan(r), w));
    if (has_bias) core.bias = to_ctx<C>(materialize(bias_plan(r), b));
  }
  void load(int r, const Tensor<float, OnCpu>& fused) {
    PDIFF_CHECK(sources == Sources::fused, "MergedColumnParallel: one tensor given for separate sources");
    const Tensor<float, OnCpu>* w[] = {&fused};
    load(r, w);
  }

  template <class R>
  tensor forward(R&, const tensor& x) const {
    auto y = core.matmul(x);
    core.add_bias(y);
    return y;
  }
  // Part i of a local output y (..., out_local) as its own tensor (..., sizes[i]/P).
  tensor part(const tensor& y, std::size_t i) const { return narrow(y, -1, part_offset(i), sizes[i] / parts); }
  // Parts [first, last) of the local output only, as one tensor (..., Σ sizes[i]/P): its own GEMM on those
  // weight rows — forward_parts(x, i, i + 1) equals part(forward(x), i) without computing the rest or copying.
  template <class R>
  tensor forward_parts(R&, const tensor& x, std::size_t first, std::size_t last) const {
    PDIFF_CHECK(first < last && last <= sizes.size(), "MergedColumnParallel: parts [", first, ", ", last,
                ") of ", sizes.size());
    return core.forward_rows(x, part_offset(first), part_offset(last));
  }
};

}  // namespace pdiff
