// pdiff/sched/guidance.hpp — guidance combine rules: plug-ins that turn the branches' predictions
// into one prediction. Every rank applies them to the all-gathered branches (parallel/cfg_parallel.hpp).
//
// | rule                          | branches                         | result                                          |
// |-------------------------------|----------------------------------|-------------------------------------------------|
// | ClassicCfg{s}                 | [pos, neg]                       | neg + s·(pos − neg), optional renorm            |
// | BagelCfg{st, si, ...}         | [gen, cfg_text, cfg_img]         | BAGEL's text then image guidance, renorm global / channel / text_channel, interval |
// | PositiveOnly{}                | [pos, ...]                       | pos (e.g. the action output of a world model)   |
// | any callable (span<const Tensor>, GuidanceStep) → Tensor | user-defined |                              |
// | TupleGuidance{rule₀, rule₁…}  | per tuple element                | element e combined by rule e                     |
// Renorm (BAGEL): scale = clamp(‖v_pos‖ / (‖v_guided‖ + 1e-8), renorm_min, 1), over everything
// (global) or the last dimension (channel); text_channel renormalises after text guidance only.
// Interval: guidance applies only for t in (lo, hi]; outside it the positive branch is returned.
#pragma once

#include <algorithm>

#include <cmath>
#include <functional>
#include <span>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

struct GuidanceStep {
  int index = 0;    // denoising step
  float t = 1.0f;   // the time the interval is tested against (BAGEL: t in [0, 1])
};

enum class Renorm { none, global, channel, text_channel };

namespace detail {
// a + s·(b − a), element-wise: the guidance step (a = unconditional, b = conditional).
inline Tensor<float, OnCpu> extrapolate(const Tensor<float, OnCpu>& a, const Tensor<float, OnCpu>& b, float s) {
  PDIFF_CHECK(a.shape() == b.shape(), "guidance: branch predictions", a.shape(), " and", b.shape(), " differ");
  Tensor<float, OnCpu> o(a.shape());
  for (std::int64_t i = 0; i < a.numel(); ++i) o(i) = a(i) + s * (b(i) - a(i));
  return o;
}

// v_ · clamp(‖ref‖ / (‖v_‖ + 1e-8), lo, 1), norms global or per row of the last dimension.
inline void renormalize(Tensor<float, OnCpu>& v, const Tensor<float, OnCpu>& ref, bool per_channel, float lo) {
  const std::int64_t d = per_channel ? v.size(-1) : v.numel(), rows = v.numel() / d;
  for (std::int64_t r = 0; r < rows; ++r) {
    double nv = 0, nr = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      nv += double(v(r * d + i)) * v(r * d + i);
      nr += double(ref(r * d + i)) * ref(r * d + i);
    }
    float scale = float(std::sqrt(nr) / (std::sqrt(nv) + 1e-8));
    scale = std::min(1.0f, std::max(lo, scale));
    for (std::int64_t i = 0; i < d; ++i) v(r * d + i) *= scale;
  }
}
}  // namespace detail

struct ClassicCfg {
  float scale = 1.0f;
  Renorm renorm = Renorm::none;
  float renorm_min = 0.0f;
  float interval_lo = -1.0f, interval_hi = 2.0f;

  Tensor<float, OnCpu> operator()(std::span<const Tensor<float, OnCpu>> b, const GuidanceStep& st) const {
    PDIFF_CHECK(b.size() == 2, "ClassicCfg: needs [positive, negative] branches, got ", b.size());
    if (!(st.t > interval_lo && st.t <= interval_hi)) return b[0].clone();
    auto v = detail::extrapolate(b[1], b[0], scale);
    if (renorm != Renorm::none) detail::renormalize(v, b[0], renorm != Renorm::global, renorm_min);
    return v;
  }
};

struct BagelCfg {
  float text_scale = 4.0f, img_scale = 1.5f;
  Renorm renorm = Renorm::global;
  float renorm_min = 0.0f;
  float interval_lo = 0.4f, interval_hi = 1.0f;

  Tensor<float, OnCpu> operator()(std::span<const Tensor<float, OnCpu>> b, const GuidanceStep& st) const {
    PDIFF_CHECK(b.size() == 3, "BagelCfg: needs [gen, cfg_text, cfg_img] branches, got ", b.size());
    const bool inside = st.t > interval_lo && st.t <= interval_hi;
    const float ts = inside ? text_scale : 1.0f, is = inside ? img_scale : 1.0f;
    const auto& v = b[0];
    if (ts <= 1.0f) return v.clone();
    auto v_text = detail::extrapolate(b[1], v, ts);
    if (renorm == Renorm::text_channel) {
      detail::renormalize(v_text, v, true, renorm_min);
      return is > 1.0f ? detail::extrapolate(b[2], v_text, is) : v_text;
    }
    auto out = is > 1.0f ? detail::extrapolate(b[2], v_text, is) : v_text;
    if (renorm != Renorm::none) detail::renormalize(out, v, renorm == Renorm::channel, renorm_min);
    return out;
  }
};

struct PositiveOnly {
  Tensor<float, OnCpu> operator()(std::span<const Tensor<float, OnCpu>> b, const GuidanceStep&) const {
    return b[0].clone();
  }
};

using GuidanceRule = std::function<Tensor<float, OnCpu>(std::span<const Tensor<float, OnCpu>>, const GuidanceStep&)>;

// Combines tuple predictions element by element, each with its own rule; a single rule applies to
// single-tensor predictions.
struct TupleGuidance {
  std::vector<GuidanceRule> rules;

  // branches[b][e]: element e of branch b's prediction.
  std::vector<Tensor<float, OnCpu>> operator()(const std::vector<std::vector<Tensor<float, OnCpu>>>& branches,
                                               const GuidanceStep& st) const {
    PDIFF_CHECK(!branches.empty(), "guidance: no branches");
    const std::size_t elems = branches[0].size();
    PDIFF_CHECK(rules.size() == elems, "guidance: ", rules.size(), " rules for predictions of ", elems, " tensors");
    std::vector<Tensor<float, OnCpu>> out;
    for (std::size_t e = 0; e < elems; ++e) {
      std::vector<Tensor<float, OnCpu>> col;
      for (auto& br : branches) col.push_back(br[e]);
      out.push_back(rules[e](col, st));
    }
    return out;
  }
};

}  // namespace pdiff
