// pdiff/core/expert_groups.hpp — a MoE router's decisions grouped by expert, the result of the
// `moe_group` op on either backend (backend/cpu/moe_route.hpp, backend/cuda/ops.hpp):
//
//   rows [offset(e), offset(e) + count[e]) are expert e's: row j is token token[j] with weight weight[j],
//   the tokens of one expert in their input order (a stable grouping).
//
// token and weight live where the logits were (device arrays on CUDA); count is on the host, since
// the expert GEMMs' shapes and the all-to-all sizes need it there.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class B>
struct ExpertGroups {
  Tensor<std::int32_t, B> token;    // (n) index of the row's token among the routed tokens
  Tensor<float, B> weight;          // (n) its routing weight
  std::vector<std::int64_t> count;  // per expert

  std::int64_t rows() const { return token.numel(); }
  std::int64_t offset(std::int64_t e) const {
    return std::accumulate(count.begin(), count.begin() + e, std::int64_t(0));
  }
  // The rows of experts [e0, e1) (views of this grouping's arrays).
  ExpertGroups experts(std::int64_t e0, std::int64_t e1) const {
    PDIFF_CHECK(0 <= e0 && e0 <= e1 && e1 <= std::int64_t(count.size()), "ExpertGroups: experts [", e0, ", ", e1,
                ") outside [0, ", count.size(), ")");
    const std::int64_t b = offset(e0), e = offset(e1);
    ExpertGroups g;
    g.token = token.slice(b, e);
    g.weight = weight.slice(b, e);
    g.count.assign(count.begin() + e0, count.begin() + e1);
    return g;
  }
};

}  // namespace pdiff
