// pdiff/backend/cpu/rope.hpp — rotary position embeddings: tables and their application.
//
// | function                                     | convention                                                  |
// |----------------------------------------------|-------------------------------------------------------------|
// | rope_table_1d(pos, dim, theta, factor)       | Llama/Mistral/Qwen: cos/sin (S, dim) = [f, f] (halves), fp32 as transformers computes it |
// | rope_table_axes(ids, axes_dims, theta)       | FLUX.2: ids (S, n_axes), per-axis 1/θ^(2i/d), float64, repeat_interleave(2) |
// | apply_rope_half(x, cos, sin)                 | x (B, S, H, D): x·cos + rotate_half(x)·sin, rotate_half = [−x₂, x₁] |
// | apply_rope_interleaved(x, cos, sin)          | x (B, S, H, D): pairs (x₂ᵢ, x₂ᵢ₊₁) rotated (diffusers use_real_unbind_dim=−1) |
// | rms_norm_rope_half / _interleaved(x, w, eps, t) | rms_norm(x, w, eps) then the rope, a new tensor (one pass on CUDA) |
// cos/sin: (S, D), or (B, S, D) when positions differ per batch entry (padding).
#pragma once

#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/core/rope_table.hpp"

namespace pdiff {


// transformers' default rope: inv_freq = 1 / θ^(arange(0, dim, 2) / dim) in fp32, freqs = pos · inv_freq
// in fp32 (divided by `linear_factor` for linear scaling), emb = cat(freqs, freqs).
inline RopeTable<OnCpu> rope_table_1d(std::span<const std::int64_t> positions, int dim, double theta,
                               double linear_factor = 1.0) {
  PDIFF_CHECK(dim > 0 && dim % 2 == 0, "rope_table_1d: head dim (", dim, ") must be even and positive");
  PDIFF_CHECK(theta > 0, "rope_table_1d: rope_theta (", theta, ") must be positive");
  PDIFF_CHECK(linear_factor > 0, "rope_table_1d: scaling factor (", linear_factor, ") must be positive");
  const std::int64_t S = std::int64_t(positions.size());
  const int half = dim / 2;
  std::vector<float> inv(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) {
    float e = float(2 * i) / float(dim);
    inv[std::size_t(i)] = float(1.0f / std::pow(float(theta), e)) / float(linear_factor);
  }
  RopeTable<OnCpu> t{CpuTensor({S, dim}), CpuTensor({S, dim})};
  for (std::int64_t s = 0; s < S; ++s)
    for (int i = 0; i < half; ++i) {
      float f = float(positions[std::size_t(s)]) * inv[std::size_t(i)];
      float c = float(std::cos(double(f))), sn = float(std::sin(double(f)));
      t.cos(s * dim + i) = t.cos(s * dim + i + half) = c;
      t.sin(s * dim + i) = t.sin(s * dim + i + half) = sn;
    }
  return t;
}

// ids: (S, n_axes) positions (integers stored as float, e.g. FLUX.2's (t, h, w, l)); axes_dims sum to D.
inline RopeTable<OnCpu> rope_table_axes(const CpuTensor& ids, std::span<const int> axes_dims, double theta) {
  PDIFF_CHECK(ids.rank() == 2 && ids.size(1) == std::int64_t(axes_dims.size()), "rope_table_axes: ids",
              ids.shape(), " must be (S, ", axes_dims.size(), ")");
  int D = 0;
  for (int d : axes_dims) {
    PDIFF_CHECK(d % 2 == 0, "rope_table_axes: every axis dim must be even, got ", d);
    D += d;
  }
  const std::int64_t S = ids.size(0), A = ids.size(1);
  RopeTable<OnCpu> t{CpuTensor({S, D}), CpuTensor({S, D})};
  for (std::int64_t s = 0; s < S; ++s) {
    int col = 0;
    for (std::int64_t a = 0; a < A; ++a) {
      int d = axes_dims[std::size_t(a)];
      double pos = ids(s * A + a);
      for (int i = 0; i < d / 2; ++i) {
        double freq = 1.0 / std::pow(theta, double(2 * i) / double(d));
        double ang = pos * freq;
        float c = float(std::cos(ang)), sn = float(std::sin(ang));
        t.cos(s * D + col + 2 * i) = t.cos(s * D + col + 2 * i + 1) = c;
        t.sin(s * D + col + 2 * i) = t.sin(s * D + col + 2 * i + 1) = sn;
      }
      col += d;
    }
  }
  return t;
}

namespace detail {
// x (B, S, H, D) with D even; the table (S, D) or (B, S, D), cos and sin alike.
inline void check_rope_args(const CpuTensor& x, const RopeTable<OnCpu>& t, const char* op) {
  PDIFF_CHECK(x.rank() == 4, op, ": x", x.shape(), " must be (B, S, H, D)");
  const std::int64_t B = x.size(0), S = x.size(1), D = x.size(3);
  PDIFF_CHECK(D % 2 == 0, op, ": head dim (", D, ") must be even");
  const bool batched = t.cos.rank() == 3;
  PDIFF_CHECK(t.cos.rank() >= 2 && t.cos.size(-1) == D && t.cos.size(-2) == S && (!batched || t.cos.size(0) == B) &&
                  t.sin.shape() == t.cos.shape(),
              op, ": table", t.cos.shape(), " must be (S, D) or (B, S, D) for x", x.shape());
}

// Calls f(row pointer, cos row, sin row) for every (b, s, h) of x (B, S, H, D).
template <class F>
void for_rope_rows(CpuTensor& x, const RopeTable<OnCpu>& t, const char* op, F f) {
  check_rope_args(x, t, op);
  const std::int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
  const bool batched = t.cos.rank() == 3;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < S; ++s) {
      const std::int64_t trow = ((batched ? b * S : 0) + s) * D;
      for (std::int64_t h = 0; h < H; ++h)
        f(x.data() + ((b * S + s) * H + h) * D, t.cos.data() + trow, t.sin.data() + trow, D);
    }
}
}  // namespace detail

// In place on x (B, S, H, D).
inline void apply_rope_half(CpuTensor& x, const RopeTable<OnCpu>& t) {
  detail::for_rope_rows(x, t, "apply_rope_half", [](float* r, const float* c, const float* s, std::int64_t D) {
    const std::int64_t h = D / 2;
    for (std::int64_t i = 0; i < h; ++i) {
      float x1 = r[i], x2 = r[i + h];
      r[i] = x1 * c[i] - x2 * s[i];
      r[i + h] = x2 * c[i + h] + x1 * s[i + h];
    }
  });
}

inline void apply_rope_interleaved(CpuTensor& x, const RopeTable<OnCpu>& t) {
  detail::for_rope_rows(x, t, "apply_rope_interleaved",
                        [](float* r, const float* c, const float* s, std::int64_t D) {
                          for (std::int64_t i = 0; i < D; i += 2) {
                            float re = r[i], im = r[i + 1];
                            r[i] = re * c[i] - im * s[i];
                            r[i + 1] = im * c[i + 1] + re * s[i + 1];
                          }
                        });
}

// A q/k projection's per-head RMSNorm and then its rotary embedding: x (B, S, H, D), w (D) or empty (no
// weight). On the CPU the two ops in turn; CUDA does both in one pass over x (FLUX.2's q and k: 2 of the
// step's elementwise passes per block).
namespace detail {
inline CpuTensor rms_norm_for_rope(const CpuTensor& x, const CpuTensor& w, float eps, const RopeTable<OnCpu>& t,
                                   const char* op) {
  check_rope_args(x, t, op);
  PDIFF_CHECK(w.empty() || w.numel() == x.size(-1), op, ": weight has ", w.numel(), " elements, x", x.shape(), " has ",
              x.size(-1), " features");
  return w.empty() ? rms_norm(x, eps) : rms_norm(x, w, eps);
}
}  // namespace detail
inline CpuTensor rms_norm_rope_half(const CpuTensor& x, const CpuTensor& w, float eps, const RopeTable<OnCpu>& t) {
  CpuTensor y = detail::rms_norm_for_rope(x, w, eps, t, "rms_norm_rope_half");
  apply_rope_half(y, t);
  return y;
}
inline CpuTensor rms_norm_rope_interleaved(const CpuTensor& x, const CpuTensor& w, float eps,
                                           const RopeTable<OnCpu>& t) {
  CpuTensor y = detail::rms_norm_for_rope(x, w, eps, t, "rms_norm_rope_interleaved");
  apply_rope_interleaved(y, t);
  return y;
}

}  // namespace pdiff
