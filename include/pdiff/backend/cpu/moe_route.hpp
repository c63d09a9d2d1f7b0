// pdiff/backend/cpu/moe_route.hpp — a MoE router's top-k on the host and the grouping of its choices
// by expert (the CPU `moe_group`; the CUDA one is src/cuda/ops_moe.cu, same results).
//
// | op                                              | shapes                        | result                            |
// |-------------------------------------------------|-------------------------------|-----------------------------------|
// | moe_route(logits, k, renormalize, scaling)      | logits (T, E) fp32            | MoeRouting: each token's k choices |
// | moe_group(logits, k, renormalize, scaling, t0, t1) | logits (T, E) fp32         | ExpertGroups of tokens [t0, t1)   |
//
// Softmax over the experts in fp32, the k largest (ties: the lower expert index first); their weights
// renormalised (k > 1) or scaled (HunyuanImage-3.0's topkgating; no token dropping). The grouping is a
// stable counting sort: inside an expert, tokens keep their order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/expert_groups.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

// Routing decisions of one forward, token-major: token t's choices are [t·k, (t+1)·k).
struct MoeRouting {
  int top_k = 1;
  std::vector<std::int32_t> expert;
  std::vector<float> weight;
  std::int64_t tokens() const { return std::int64_t(expert.size()) / top_k; }
};

// (`first`: the index of logits' first row among the tokens, for error messages.)
inline MoeRouting moe_route(const Tensor<float, OnCpu>& logits, int k, bool renormalize, float scaling = 1.0f,
                            std::int64_t first = 0) {
  PDIFF_CHECK(logits.rank() == 2 && k >= 1 && k <= logits.size(1), "moe_route: logits", logits.shape(),
              " must be (tokens, experts) with 1 <= top_k (", k, ") <= experts");
  const std::int64_t T = logits.size(0), E = logits.size(1);
  MoeRouting r;
  r.top_k = k;
  r.expert.resize(std::size_t(T * k));
  r.weight.resize(std::size_t(T * k));
  std::vector<float> p(static_cast<std::size_t>(E));
  std::vector<std::int32_t> order(static_cast<std::size_t>(E));
  for (std::int64_t t = 0; t < T; ++t) {
    const float* l = logits.data() + t * E;
    const float m = *std::max_element(l, l + E);
    float sum = 0.0f;
    for (std::int64_t e = 0; e < E; ++e) sum += p[std::size_t(e)] = std::exp(l[e] - m);
    PDIFF_CHECK(std::isfinite(m) && std::isfinite(sum), "MoE router: the logits of token ", first + t,
                " are not finite (NaN or inf): the input or the router weights hold non-finite values");
    for (auto& v : p) v /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int32_t a, std::int32_t b) {
      return p[std::size_t(a)] > p[std::size_t(b)] || (p[std::size_t(a)] == p[std::size_t(b)] && a < b);
    });
    float chosen = 0.0f;
    for (int j = 0; j < k; ++j) chosen += p[std::size_t(order[std::size_t(j)])];
    const bool norm = renormalize && k > 1;
    const float f = norm ? 1.0f / std::max(chosen, std::numeric_limits<float>::epsilon()) : scaling;
    for (int j = 0; j < k; ++j) {
      const auto e = order[std::size_t(j)];
      r.expert[std::size_t(t * k + j)] = e;
      r.weight[std::size_t(t * k + j)] = p[std::size_t(e)] * f;
    }
  }
  return r;
}

// The choices of tokens [t0, t1) of a routing over `experts` experts, grouped by expert; token indices
// are the routing's (t0 ≤ token < t1).
inline ExpertGroups<OnCpu> group_by_expert(const MoeRouting& r, std::int64_t experts, std::int64_t t0,
                                           std::int64_t t1) {
  PDIFF_CHECK(0 <= t0 && t0 <= t1 && t1 <= r.tokens(), "group_by_expert: tokens [", t0, ", ", t1, ") outside [0, ",
              r.tokens(), ")");
  ExpertGroups<OnCpu> g;
  g.count.assign(std::size_t(experts), 0);
  const int k = r.top_k;
  for (std::int64_t i = t0 * k; i < t1 * k; ++i) ++g.count[std::size_t(r.expert[std::size_t(i)])];
  std::vector<std::int64_t> at(g.count.size(), 0);
  for (std::size_t e = 1; e < at.size(); ++e) at[e] = at[e - 1] + g.count[e - 1];
  g.token = Tensor<std::int32_t, OnCpu>({(t1 - t0) * k});
  g.weight = Tensor<float, OnCpu>({(t1 - t0) * k});
  for (std::int64_t i = t0 * k; i < t1 * k; ++i) {
    const auto j = at[std::size_t(r.expert[std::size_t(i)])]++;
    g.token.data()[j] = std::int32_t(i / k);
    g.weight.data()[j] = r.weight[std::size_t(i)];
  }
  return g;
}

// moe_route of tokens [t0, t1), grouped by expert.
inline ExpertGroups<OnCpu> moe_group(const Tensor<float, OnCpu>& logits, int k, bool renormalize, float scaling,
                                     std::int64_t t0, std::int64_t t1) {
  PDIFF_CHECK(logits.rank() == 2 && 0 <= t0 && t0 <= t1 && t1 <= logits.size(0), "moe_group: tokens [", t0, ", ",
              t1, ") of logits", logits.shape(), " (tokens, experts)");
  auto g = group_by_expert(moe_route(logits.slice(t0, t1), k, renormalize, scaling, t0), logits.size(1), 0, t1 - t0);
  for (std::int64_t j = 0; j < g.rows(); ++j) g.token.data()[j] += std::int32_t(t0);
  return g;
}

}  // namespace pdiff
