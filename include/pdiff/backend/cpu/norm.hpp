// pdiff/backend/cpu/norm.hpp — normalisations over the last dimension (and GroupNorm over channels).
//
// | op                                   | x               | result                                   |
// |--------------------------------------|-----------------|------------------------------------------|
// | rms_norm(x, w, eps)                  | (..., D)        | x / sqrt(mean(x²) + eps) · w             |
// | rms_norm(x, eps)                     | (..., D)        | without weight                           |
// | layer_norm(x, w, b, eps)             | (..., D)        | (x − mean) / sqrt(var + eps) · w + b     |
// | layer_norm(x, eps)                   | (..., D)        | without affine (FLUX.2's norms)          |
// | group_norm(x, groups, w, b, eps)     | (B, C, ...)     | per (batch, group) over C/groups × rest  |
// Statistics are accumulated in double so results do not depend on the summation order (the
// reference libraries' fp32 reductions agree with them to ~1e-7 relative).
#pragma once

#include <cmath>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

using CpuTensor = Tensor<float, OnCpu>;

namespace detail {
inline void check_last_dim(const char* op, const CpuTensor& x, const CpuTensor* w, const char* wname) {
  if (w && !w->empty())
    PDIFF_CHECK(w->numel() == x.size(-1), op, ": ", wname, " has ", w->numel(), " elements, x", x.shape(),
                " has ", x.size(-1), " features");
}

template <class Affine>
CpuTensor normalize_rows(const CpuTensor& x, bool center, float eps, Affine affine) {
  CpuTensor out(x.shape());
  const std::int64_t d = x.size(-1), rows = x.numel() / d;
  const float* px = x.data();
  float* po = out.data();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * d;
    double mean = 0.0;
    if (center) {
      for (std::int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= double(d);
    }
    double ss = 0.0;
    for (std::int64_t i = 0; i < d; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
    float inv = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
    float* orow = po + r * d;
    for (std::int64_t i = 0; i < d; ++i) orow[i] = affine(float(xr[i] - mean) * inv, i);
  }
  return out;
}
}  // namespace detail

inline CpuTensor rms_norm(const CpuTensor& x, const CpuTensor& w, float eps) {
  detail::check_last_dim("rms_norm", x, &w, "weight");
  const float* pw = w.data();
  return detail::normalize_rows(x, false, eps, [pw](float v, std::int64_t i) { return v * pw[i]; });
}
inline CpuTensor rms_norm(const CpuTensor& x, float eps) {
  return detail::normalize_rows(x, false, eps, [](float v, std::int64_t) { return v; });
}

inline CpuTensor layer_norm(const CpuTensor& x, const CpuTensor& w, const CpuTensor& b, float eps) {
  detail::check_last_dim("layer_norm", x, &w, "weight");
  detail::check_last_dim("layer_norm", x, &b, "bias");
  const float* pw = w.empty() ? nullptr : w.data();
  const float* pb = b.empty() ? nullptr : b.data();
  return detail::normalize_rows(x, true, eps, [pw, pb](float v, std::int64_t i) {
    if (pw) v *= pw[i];
    if (pb) v += pb[i];
    return v;
  });
}
inline CpuTensor layer_norm(const CpuTensor& x, float eps) {
  return detail::normalize_rows(x, true, eps, [](float v, std::int64_t) { return v; });
}

// x: (B, C, *spatial); w, b: (C) or empty.
inline CpuTensor group_norm(const CpuTensor& x, int groups, const CpuTensor& w, const CpuTensor& b, float eps) {
  PDIFF_CHECK(x.rank() >= 2, "group_norm: x", x.shape(), " needs (B, C, ...)");
  const std::int64_t B = x.size(0), C = x.size(1), rest = x.numel() / (B * C);
  PDIFF_CHECK(groups > 0 && C % groups == 0, "group_norm: channels (", C, ") must be divisible by groups (",
              groups, ")");
  PDIFF_CHECK(w.empty() || w.numel() == C, "group_norm: weight has ", w.numel(), " elements, x has ", C,
              " channels");
  PDIFF_CHECK(b.empty() || b.numel() == C, "group_norm: bias has ", b.numel(), " elements, x has ", C,
              " channels");
  CpuTensor out(x.shape());
  const std::int64_t cpg = C / groups, n = cpg * rest;
  for (std::int64_t bi = 0; bi < B; ++bi)
    for (std::int64_t g = 0; g < groups; ++g) {
      const float* xs = x.data() + (bi * C + g * cpg) * rest;
      float* os = out.data() + (bi * C + g * cpg) * rest;
      double mean = 0.0, ss = 0.0;
      for (std::int64_t i = 0; i < n; ++i) mean += xs[i];
      mean /= double(n);
      for (std::int64_t i = 0; i < n; ++i) ss += (xs[i] - mean) * (xs[i] - mean);
      float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
      for (std::int64_t c = 0; c < cpg; ++c) {
        float wc = w.empty() ? 1.0f : w(g * cpg + c), bc = b.empty() ? 0.0f : b(g * cpg + c);
        for (std::int64_t i = 0; i < rest; ++i)
          os[c * rest + i] = float(xs[c * rest + i] - mean) * inv * wc + bc;
      }
    }
  return out;
}

}  // namespace pdiff
