// pdiff/backend/cpu/gemm.hpp — gemm() on the CPU backend through Eigen (fp32).
//
// | case                         | how                                        |
// |------------------------------|--------------------------------------------|
// | rank-2 operands              | one Eigen product, transposes as views     |
// | batched a, b, c              | one product per batch entry                |
// | rank-2 weight, batched other | the weight's map is reused for every entry |
// Eigen's row-major maps + .noalias() write straight into c, so there is no temporary: the
// benchmark compares this against Eigen called directly (ratio ≥ 0.95).
#pragma once

#include <Eigen/Core>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/gemm_args.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;

template <class A, class B>
void gemm_into(Map c, const A& a, const B& b, const GemmArgs& g) {
  if (g.beta == 0.0f) {
    if (g.alpha == 1.0f) c.noalias() = a * b;
    else c.noalias() = g.alpha * (a * b);
  } else {
    if (g.beta != 1.0f) c *= g.beta;
    c.noalias() += g.alpha * (a * b);
  }
}

inline void gemm_f32(const float* a, std::int64_t ar, std::int64_t ac, bool ta, const float* b, std::int64_t br,
                     std::int64_t bc, bool tb, float* c, std::int64_t m, std::int64_t n, const GemmArgs& g) {
  ConstMap A(a, ar, ac), B(b, br, bc);
  Map C(c, m, n);
  if (!ta && !tb) gemm_into(C, A, B, g);
  else if (ta && !tb) gemm_into(C, A.transpose(), B, g);
  else if (!ta && tb) gemm_into(C, A, B.transpose(), g);
  else gemm_into(C, A.transpose(), B.transpose(), g);
}
}  // namespace detail

// c = alpha · op(a) · op(b) + beta · c  (shapes: see core/gemm_args.hpp)
inline void gemm(const Tensor<float, OnCpu>& a, const Tensor<float, OnCpu>& b, Tensor<float, OnCpu>& c,
                 const GemmArgs& g = {}) {
  GemmDims d = gemm_dims(a.shape(), b.shape(), c.shape(), g);
  std::int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  for (std::int64_t i = 0; i < d.batch; ++i) {
    const float* pa = a.data() + (d.a_batched ? i * ar * ac : 0);
    const float* pb = b.data() + (d.b_batched ? i * br * bc : 0);
    detail::gemm_f32(pa, ar, ac, g.trans_a, pb, br, bc, g.trans_b, c.data() + i * d.m * d.n, d.m, d.n, g);
  }
}

}  // namespace pdiff
