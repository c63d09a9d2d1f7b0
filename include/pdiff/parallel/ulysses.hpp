// pdiff/parallel/ulysses.hpp — Ulysses<N>: Ulysses sequence parallel. A mesh axis: the sequence is split N ways; an all-to-all turns sequence shards into head shards around attention and back.
#pragma once

namespace pdiff {

namespace kind {
struct seq_ulysses {};
}  // namespace kind

template <int N>
struct Ulysses {
  using kind = kind::seq_ulysses;
  static constexpr int degree = N;
  static_assert(N >= 1, "Ulysses<N>: degree must be >= 1");
};

}  // namespace pdiff
