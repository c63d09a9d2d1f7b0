// pdiff/parallel/dp.hpp — DP<N>: data parallel. A mesh axis: independent requests or batch shards.
#pragma once

#include "pdiff/core/kinds.hpp"

namespace pdiff {

template <int N>
struct DP {
  using kind = kind::data;
  static constexpr int degree = N;
  static_assert(N >= 1, "DP<N>: degree must be >= 1");
};

}  // namespace pdiff
