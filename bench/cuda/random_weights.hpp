// bench/cuda/random_weights.hpp — weights for device benchmarks at released sizes without a checkpoint
// (tens of GB of bf16 would not fit the GPU machine's disk): RandomWeights has Checkpoint's reading
// interface; each shard is a random N(0, 0.02²) fp32 tensor of the plan's local shape, made once per shape
// and reused (timing does not depend on the values); read(name) gives `ones` ones (per-head norm weights).
#pragma once

#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/core/tensor.hpp"
#include "pdiff/io/shard_plan.hpp"

namespace pdiff::bench {

// x ~ N(0, sd²) from a fixed seed.
inline Tensor<float> randn(const Shape& s, std::uint32_t seed, float sd) {
  Tensor<float> t(s);
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, sd);
  for (auto& v : t.span()) v = d(gen);
  return t;
}

struct RandomWeights {
  std::int64_t ones = 128;
  mutable std::map<std::vector<std::int64_t>, Tensor<float>> by_shape;
  Tensor<float> make(const Shape& s) const {
    std::vector<std::int64_t> key(s.dims.begin(), s.dims.begin() + s.rank);
    auto it = by_shape.find(key);
    if (it == by_shape.end()) it = by_shape.emplace(key, randn(s, std::uint32_t(s.numel()), 0.02f)).first;
    return it->second;
  }
  Tensor<float> read(const std::string&) const {
    Tensor<float> t({ones});
    for (auto& v : t.span()) v = 1.0f;
    return t;
  }
  Tensor<float> read_plan(const ShardPlan& plan, std::span<const std::string>,
                          std::span<const std::vector<std::int64_t>> = {}) const {
    return make(plan.local);
  }
  // Like a BF16 checkpoint: shards come as bf16 (made once per shape), so a bf16 model loads half the bytes
  // to the device and converts nothing there (detail::set_shard).
  mutable std::map<std::vector<std::int64_t>, Tensor<bf16>> by_shape16;
  bool all_bf16(std::span<const std::string>) const { return true; }
  Tensor<bf16> read_plan_bf16(const ShardPlan& plan, std::span<const std::string>,
                              std::span<const std::vector<std::int64_t>> = {}) const {
    const Shape& s = plan.local;
    std::vector<std::int64_t> key(s.dims.begin(), s.dims.begin() + s.rank);
    auto it = by_shape16.find(key);
    if (it == by_shape16.end()) it = by_shape16.emplace(key, convert<bf16>(make(s))).first;
    return it->second;
  }
};

}  // namespace pdiff::bench
