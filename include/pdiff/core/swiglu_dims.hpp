// pdiff/core/swiglu_dims.hpp — the sizes of swiglu and swiglu_into, checked once for the CPU and CUDA ops.
#pragma once

#include <cstdint>

#include "pdiff/core/error.hpp"
#include "pdiff/core/shape.hpp"

namespace pdiff {

// x (..., 2I) = [gate | up], `rows` rows of it → I columns [col0, col0 + I) of rows `width` wide.
struct SwigluDims {
  std::int64_t rows = 0, in = 0, width = 0;

  // swiglu(x): a new (..., I)
  static SwigluDims of(const Shape& x) {
    const std::int64_t two_i = x[-1];
    PDIFF_CHECK(two_i > 0 && two_i % 2 == 0, "swiglu: last dimension (", two_i, ") must be even and positive: [gate | up]");
    return {x.numel() / two_i, two_i / 2, two_i / 2};
  }
  // swiglu_into(x, out, col0): the same rows, out's last dimension holds the part at col0
  static SwigluDims into(const Shape& x, const Shape& out, std::int64_t col0) {
    const std::int64_t two_i = x[-1], w = out[-1];
    PDIFF_CHECK(two_i > 0 && two_i % 2 == 0, "swiglu_into: last dimension of x (", two_i,
                ") must be even and positive: [gate | up]");
    const SwigluDims d{x.numel() / two_i, two_i / 2, w};
    PDIFF_CHECK(w > 0 && out.numel() / w == d.rows && col0 >= 0 && col0 + d.in <= w, "swiglu_into: x", x,
                " does not fit columns [", col0, ", ", col0 + d.in, ") of out", out);
    return d;
  }
};

}  // namespace pdiff
