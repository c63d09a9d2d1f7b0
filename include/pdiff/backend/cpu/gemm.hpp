// pdiff/backend/cpu/gemm.hpp — gemm() on the CPU backend (fp32), through detail::sgemm_rm (blas.hpp:
// OpenBLAS when the build found it, else Eigen).
//
// | case                         | how                                        |
// |------------------------------|--------------------------------------------|
// | rank-2 operands              | one sgemm, transposes as flags             |
// | batched a, b, c              | one sgemm per batch entry                  |
// | rank-2 weight, batched other | the weight is reused for every entry       |
// Both paths write straight into c, so there is no temporary: bench_gemm compares this against the
// library called directly (ratio >= 0.95).
#pragma once

#include "pdiff/backend/cpu/blas.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/gemm_args.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

// c = alpha · op(a) · op(b) + beta · c  (shapes: see core/gemm_args.hpp)
inline void gemm(const Tensor<float, OnCpu>& a, const Tensor<float, OnCpu>& b, Tensor<float, OnCpu>& c,
                 const GemmArgs& g = {}) {
  GemmDims d = gemm_dims(a.shape(), b.shape(), c.shape(), g);
  const std::int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  const std::int64_t k = g.trans_a ? ar : ac;
  for (std::int64_t i = 0; i < d.batch; ++i) {
    const float* pa = a.data() + (d.a_batched ? i * ar * ac : 0);
    const float* pb = b.data() + (d.b_batched ? i * br * bc : 0);
    detail::sgemm_rm(g.trans_a, g.trans_b, d.m, d.n, k, g.alpha, pa, ac, pb, bc, g.beta, c.data() + i * d.m * d.n,
                     d.n);
  }
}

}  // namespace pdiff
