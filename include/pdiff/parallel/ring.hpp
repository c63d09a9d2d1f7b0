// pdiff/parallel/ring.hpp — Ring<N>: Ring sequence parallel. A mesh axis: the sequence is split N ways; K/V blocks travel around the ring and partial attention outputs are merged with their log-sum-exp.
#pragma once

#include "pdiff/core/kinds.hpp"

namespace pdiff {

template <int N>
struct Ring {
  using kind = kind::seq_ring;
  static constexpr int degree = N;
  static_assert(N >= 1, "Ring<N>: degree must be >= 1");
};

}  // namespace pdiff
