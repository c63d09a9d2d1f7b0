// pdiff/backend/cpu/activation.hpp — element-wise activations and the small fused blocks of DiTs.
//
// | op                             | shapes                                    | result                      |
// |--------------------------------|-------------------------------------------|-----------------------------|
// | silu(x)                        | any                                       | x·σ(x)                      |
// | gelu_tanh(x)                   | any                                       | GELU, tanh approximation    |
// | swiglu(x)                      | (..., 2I) → (..., I)                      | silu(x[:I]) · x[I:]         |
// | swiglu_into(x, out, col0)      | x (..., 2I); out (..., W), in place       | out[..., col0:col0+I] = swiglu(x) |
// | modulate(x, shift, scale)      | x (B, S, D); shift, scale (B, D)          | (1 + scale)·x + shift       |
// | layer_norm_modulate(x, eps, shift, scale) | as modulate       | modulate(LN(x), shift, scale) |
// | gated_add(x, gate, y)          | x, y (B, S, D); gate (B, D); in place     | x += gate·y                 |
// | add(x, y) / add_(x, y)         | equal shapes, or y broadcast on the last dim | x + y                     |
#pragma once

#include <cmath>

#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/backend/cpu/vexp.hpp"
#include "pdiff/core/swiglu_dims.hpp"

namespace pdiff {

inline float silu(float v) { return v / (1.0f + detail::vexp(-v)); }

inline CpuTensor silu(const CpuTensor& x) {
  CpuTensor o(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) o(i) = silu(x(i));
  return o;
}

inline CpuTensor gelu_tanh(const CpuTensor& x) {
  CpuTensor o(x.shape());
  const float k = 0.7978845608028654f;  // sqrt(2/π)
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    float v = x(i);
    o(i) = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
  return o;
}

// x: (..., 2I) laid out [gate | up] → out's columns [col0, col0 + I) of its last dimension (W wide, the
// same rows) = silu(gate) · up: a part of a packed buffer written in place (FLUX.2's [attention | mlp]).
inline void swiglu_into(const CpuTensor& x, CpuTensor& out, std::int64_t col0) {
  const auto d = SwigluDims::into(x.shape(), out.shape(), col0);
  for (std::int64_t r = 0; r < d.rows; ++r) {
    const float* xr = x.data() + r * 2 * d.in;
    float* o = out.data() + r * d.width + col0;
    for (std::int64_t i = 0; i < d.in; ++i) o[i] = silu(xr[i]) * xr[d.in + i];
  }
}

// x: (..., 2I) laid out [gate | up] → (..., I) = silu(gate) · up
inline CpuTensor swiglu(const CpuTensor& x) {
  const auto d = SwigluDims::of(x.shape());
  Shape s = x.shape();
  s[-1] = d.in;
  CpuTensor o(s);
  swiglu_into(x, o, 0);
  return o;
}

namespace detail {
inline void check_mod(const char* op, const CpuTensor& x, const CpuTensor& p) {
  PDIFF_CHECK(x.rank() == 3 && p.numel() == x.size(0) * x.size(2), op, ": x", x.shape(), " must be (B, S, D) and its ",
              "parameter", p.shape(), " (B, D)");
}
}  // namespace detail

// (1 + scale)·x + shift; x: (B, S, D), shift/scale: (B, D) (any shape with B·D elements)
inline CpuTensor modulate(const CpuTensor& x, const CpuTensor& shift, const CpuTensor& scale) {
  detail::check_mod("modulate", x, shift);
  detail::check_mod("modulate", x, scale);
  const std::int64_t B = x.size(0), S = x.size(1), D = x.size(2);
  CpuTensor o(x.shape());
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t d = 0; d < D; ++d) {
        std::int64_t i = (b * S + s) * D + d;
        o(i) = (1.0f + scale(b * D + d)) * x(i) + shift(b * D + d);
      }
  return o;
}

// x += gate·y; x, y: (B, S, D), gate: (B, D)
// modulate(layer_norm(x) without affine, shift, scale): DiT AdaLN; one fused kernel on CUDA.
inline CpuTensor layer_norm_modulate(const CpuTensor& x, float eps, const CpuTensor& shift, const CpuTensor& scale) {
  return modulate(layer_norm(x, eps), shift, scale);
}

inline void gated_add(CpuTensor& x, const CpuTensor& gate, const CpuTensor& y) {
  detail::check_mod("gated_add", x, gate);
  PDIFF_CHECK(x.shape() == y.shape(), "gated_add: x", x.shape(), " and y", y.shape(), " must match");
  const std::int64_t B = x.size(0), S = x.size(1), D = x.size(2);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < S; ++s)
      for (std::int64_t d = 0; d < D; ++d) x((b * S + s) * D + d) += gate(b * D + d) * y((b * S + s) * D + d);
}

// x += y, y equal-shaped or a (D) vector broadcast over the rows.
inline void add_(CpuTensor& x, const CpuTensor& y) {
  if (y.numel() == x.numel()) {
    for (std::int64_t i = 0; i < x.numel(); ++i) x(i) += y(i);
    return;
  }
  const std::int64_t d = x.size(-1);
  PDIFF_CHECK(y.numel() == d, "add: y", y.shape(), " must match x", x.shape(), " or its last dimension");
  for (std::int64_t i = 0; i < x.numel(); ++i) x(i) += y(i % d);
}
inline CpuTensor add(const CpuTensor& x, const CpuTensor& y) {
  CpuTensor o = x.clone();
  add_(o, y);
  return o;
}

}  // namespace pdiff
