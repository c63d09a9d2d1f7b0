// pdiff/parallel/tp.hpp — TP<N>: tensor parallel. A mesh axis: attention heads, MLP columns/rows and the vocabulary are split N ways; row-parallel outputs are all-reduced. TP varies fastest in the rank order so its heavy traffic stays inside a node.
#pragma once

namespace pdiff {

namespace kind {
struct tensor {};
}  // namespace kind

template <int N>
struct TP {
  using kind = kind::tensor;
  static constexpr int degree = N;
  static_assert(N >= 1, "TP<N>: degree must be >= 1");
};

}  // namespace pdiff
