// pdiff/parallel/dp.hpp — DP<N>: data parallel. A mesh axis: independent requests or batch shards.
//
// | call                     | what                                                                   |
// |--------------------------|------------------------------------------------------------------------|
// | dp_assign(costs, groups) | the DP group of each request: longest first, each to the least loaded group (ties: the lower index) — the same answer on every rank, so no communication decides it |
// | dp_loads(costs, owner, groups) | the summed cost per group, for reports and tests                 |
#pragma once

#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

#include "pdiff/core/error.hpp"

namespace pdiff {

namespace kind {
struct data {};
}  // namespace kind

template <int N>
struct DP {
  using kind = kind::data;
  static constexpr int degree = N;
  static_assert(N >= 1, "DP<N>: degree must be >= 1");
};

// LPT scheduling: within 4/3 of the best makespan, and exact for equal costs (round robin by count).
inline std::vector<int> dp_assign(std::span<const double> costs, int groups) {
  PDIFF_CHECK(groups >= 1, "dp_assign: ", groups, " groups; DP needs at least one");
  std::vector<std::size_t> order(costs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  std::vector<double> load(std::size_t(groups), 0.0);
  std::vector<int> owner(costs.size(), 0);
  for (std::size_t i : order) {
    PDIFF_CHECK(costs[i] >= 0, "dp_assign: request ", i, " has a negative cost ", costs[i]);
    const auto g = std::size_t(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = int(g);
    load[g] += costs[i];
  }
  return owner;
}

inline std::vector<double> dp_loads(std::span<const double> costs, std::span<const int> owner, int groups) {
  std::vector<double> load(std::size_t(groups), 0.0);
  for (std::size_t i = 0; i < costs.size(); ++i) load[std::size_t(owner[i])] += costs[i];
  return load;
}

}  // namespace pdiff
