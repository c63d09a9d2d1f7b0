// pdiff/parallel/ring.hpp — Ring<N>: Ring sequence parallel. A mesh axis: the sequence is split N ways; K/V blocks travel around the ring and partial attention outputs are merged with their log-sum-exp.
#pragma once

namespace pdiff {

namespace kind {
struct seq_ring {};
}  // namespace kind

template <int N>
struct Ring {
  using kind = kind::seq_ring;
  static constexpr int degree = N;
  static_assert(N >= 1, "Ring<N>: degree must be >= 1");
};

}  // namespace pdiff
