// pdiff/core/gemm_args.hpp — the options of gemm(), shared by every backend.
//
//   c = alpha · op(a) · op(b) + beta · c
//   a: (..., M, K), or (..., K, M) when trans_a      b: (..., K, N), or (..., N, K) when trans_b
//   c: (..., M, N); leading dimensions are the batch: equal on all three, or 1 (a rank-2 operand)
//   on a or b, which is then shared by every batch entry (a weight).
// The common linear layer y = x · Wᵀ with W: (out, in) is gemm(x, W, y, {.trans_b = true}).
#pragma once

#include <cstdint>

#include "pdiff/core/error.hpp"
#include "pdiff/core/shape.hpp"

namespace pdiff {

struct GemmArgs {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;
};

// The problem sizes of a gemm call, checked against the shapes (a clear error on mismatch).
struct GemmDims {
  std::int64_t batch = 1, m = 0, n = 0, k = 0;
  bool a_batched = false, b_batched = false;
};

namespace detail {
inline std::int64_t batch_of(const Shape& s) {
  std::int64_t b = 1;
  for (int i = 0; i + 2 < s.rank; ++i) b *= s.dims[i];
  return b;
}
}  // namespace detail

inline GemmDims gemm_dims(const Shape& a, const Shape& b, const Shape& c, const GemmArgs& g) {
  PDIFF_CHECK(a.rank >= 2 && b.rank >= 2 && c.rank >= 2, "gemm: operands need rank >= 2, got a", a, " b", b,
              " c", c);
  GemmDims d;
  d.m = g.trans_a ? a[-1] : a[-2];
  d.k = g.trans_a ? a[-2] : a[-1];
  std::int64_t kb = g.trans_b ? b[-1] : b[-2];
  d.n = g.trans_b ? b[-2] : b[-1];
  PDIFF_CHECK(d.k == kb, "gemm: inner dimensions differ: a", a, (g.trans_a ? "ᵀ" : ""), " has K=", d.k, ", b", b,
              (g.trans_b ? "ᵀ" : ""), " has K=", kb);
  PDIFF_CHECK(c[-2] == d.m && c[-1] == d.n, "gemm: c", c, " must end in (", d.m, ", ", d.n, ")");
  std::int64_t ba = detail::batch_of(a), bb = detail::batch_of(b), bc = detail::batch_of(c);
  PDIFF_CHECK((ba == bc || ba == 1) && (bb == bc || bb == 1), "gemm: batch sizes a=", ba, " b=", bb, " c=", bc,
              " must equal c's or be 1");
  d.batch = bc;
  d.a_batched = ba == bc && bc > 1;
  d.b_batched = bb == bc && bc > 1;
  return d;
}

}  // namespace pdiff
