// pdiff/models/bagel/sampler.hpp — BAGEL's schedule and three-branch guidance (bagel.py generate_image,
// _forward_flow), as plain host arithmetic every CFG rank does itself (bit-identical everywhere).
//
//   t = linspace(1, 0, n) (torch's fp32 formula), t ← s·t / (1 + (s−1)·t); step i: x ← x − v·(t_i − t_{i+1})
//   inside cfg_interval (lo < t ≤ hi) with text scale s_t > 1 (otherwise v = v_gen):
//     v_t = v_ct + s_t·(v − v_ct)
//     global / channel: v' = s_i > 1 ? v_ci + s_i·(v_t − v_ci) : v_t;  v' ·= clamp(|v| / (|v'| + 1e-8), min, 1)
//                       (|·| over the whole tensor, or per token)
//     text_channel:     v_t ·= clamp(|v|_token / (|v_t|_token + 1e-8), min, 1);  v' = s_i > 1 ? v_ci + s_i·(v_t − v_ci) : v_t
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

enum class BagelRenorm { global, channel, text_channel };

inline BagelRenorm parse_bagel_renorm(const std::string& s) {
  if (s == "global") return BagelRenorm::global;
  if (s == "channel") return BagelRenorm::channel;
  if (s == "text_channel") return BagelRenorm::text_channel;
  throw Error("BAGEL: cfg renorm '" + s + "' is not one of global, channel, text_channel");
}

struct BagelGuidance {
  float text_scale = 4.0f, img_scale = 1.5f;  // the reference's defaults (editing uses img 2.0)
  float interval_lo = 0.4f, interval_hi = 1.0f;
  float renorm_min = 0.0f;
  BagelRenorm renorm = BagelRenorm::global;

  struct Scales {
    float text = 1.0f, img = 1.0f;
  };
  // The scales at timestep t: the configured ones inside (lo, hi], 1 outside.
  Scales at(float t) const {
    if (t > interval_lo && t <= interval_hi) return {text_scale, img_scale};
    return {};
  }
  void check() const {
    PDIFF_CHECK(std::isfinite(text_scale) && std::isfinite(img_scale) && text_scale >= 0 && img_scale >= 0,
                "BAGEL: guidance scales (text ", text_scale, ", image ", img_scale, ") must be finite and >= 0");
    PDIFF_CHECK(interval_lo <= interval_hi, "BAGEL: cfg interval [", interval_lo, ", ", interval_hi, "] is empty");
    PDIFF_CHECK(renorm_min >= 0 && renorm_min <= 1, "BAGEL: cfg_renorm_min (", renorm_min, ") must be in [0, 1]");
  }
};

// linspace(1, 0, n) as torch computes it in fp32, shifted.
inline std::vector<float> bagel_timesteps(int n, float shift) {
  PDIFF_CHECK(n >= 2, "BAGEL: num_timesteps (", n, ") must be >= 2");
  PDIFF_CHECK(shift > 0, "BAGEL: timestep shift (", shift, ") must be > 0");
  std::vector<float> t(static_cast<std::size_t>(n));
  const float start = 1.0f, end = 0.0f, step = (end - start) / float(n - 1);
  const int half = n / 2;
  for (int i = 0; i < n; ++i) {
    const float u = i < half ? start + step * float(i) : end - step * float(n - i - 1);
    t[std::size_t(i)] = shift * u / (1.0f + (shift - 1.0f) * u);
  }
  return t;
}

// The guided velocity from the branches' velocities (N, C): v (gen), v_ct (cfg_text), v_ci (cfg_img;
// may be v itself). v_ct == nullptr: no guidance (v).
inline Tensor<float, OnCpu> bagel_combine(const Tensor<float, OnCpu>& v, const Tensor<float, OnCpu>* v_ct,
                                          const Tensor<float, OnCpu>* v_ci, BagelGuidance::Scales s,
                                          const BagelGuidance& g) {
  if (!v_ct || s.text <= 1.0f) return v.clone();
  const std::int64_t N = v.size(0), C = v.size(1);
  PDIFF_CHECK(v_ct->shape() == v.shape() && (!v_ci || v_ci->shape() == v.shape()), "BAGEL: branch velocities differ in shape");
  const bool img = s.img > 1.0f;
  PDIFF_CHECK(!img || v_ci, "BAGEL: image guidance needs the cfg_img branch");
  auto row_norm = [C](const float* p) {
    double a = 0;
    for (std::int64_t c = 0; c < C; ++c) a += double(p[c]) * double(p[c]);
    return float(std::sqrt(a));
  };
  auto clamp_scale = [&](float num, float den) { return std::clamp(num / (den + 1e-8f), g.renorm_min, 1.0f); };
  Tensor<float, OnCpu> vt({N, C}), out({N, C});
  for (std::int64_t k = 0; k < v.numel(); ++k) vt(k) = (*v_ct)(k) + s.text * (v(k) - (*v_ct)(k));
  if (g.renorm == BagelRenorm::text_channel) {
    for (std::int64_t r = 0; r < N; ++r) {
      const float sc = clamp_scale(row_norm(v.data() + r * C), row_norm(vt.data() + r * C));
      for (std::int64_t c = 0; c < C; ++c) vt(r * C + c) *= sc;
    }
    for (std::int64_t k = 0; k < v.numel(); ++k) out(k) = img ? (*v_ci)(k) + s.img * (vt(k) - (*v_ci)(k)) : vt(k);
    return out;
  }
  for (std::int64_t k = 0; k < v.numel(); ++k) out(k) = img ? (*v_ci)(k) + s.img * (vt(k) - (*v_ci)(k)) : vt(k);
  if (g.renorm == BagelRenorm::global) {
    double a = 0, b = 0;
    for (std::int64_t k = 0; k < v.numel(); ++k) a += double(v(k)) * double(v(k)), b += double(out(k)) * double(out(k));
    const float sc = clamp_scale(float(std::sqrt(a)), float(std::sqrt(b)));
    for (std::int64_t k = 0; k < out.numel(); ++k) out(k) *= sc;
  } else {
    for (std::int64_t r = 0; r < N; ++r) {
      const float sc = clamp_scale(row_norm(v.data() + r * C), row_norm(out.data() + r * C));
      for (std::int64_t c = 0; c < C; ++c) out(r * C + c) *= sc;
    }
  }
  return out;
}

}  // namespace pdiff
