// pdiff/parallel/cfg.hpp — CFG<N>: classifier-free-guidance parallel. A mesh axis: guidance branches (positive, negative, ...) run on different rank groups; predictions are all-gathered and every rank combines them locally. The runtime is parallel/cfg_parallel.hpp (cfg_predict), the combine rules sched/guidance.hpp.
#pragma once

namespace pdiff {

namespace kind {
struct cfg {};
}  // namespace kind

template <int N>
struct CFG {
  using kind = kind::cfg;
  static constexpr int degree = N;
  static_assert(N >= 1, "CFG<N>: degree must be >= 1");
};

}  // namespace pdiff
