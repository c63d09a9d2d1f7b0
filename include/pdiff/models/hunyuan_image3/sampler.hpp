// pdiff/models/hunyuan_image3/sampler.hpp — HunyuanImage-3.0's text-to-image sampling (SPEC.md §8):
// flow-match Euler with shifted sigmas and two-branch CFG on the layout's CFG axis.
//
//   σ = linspace(1, 0, n+1), σ ← s·σ / (1 + (s−1)·σ)   (flow_shift s, default 3)
//   per step: v_c, v_u = model(cond, x, 1000·σ_i), model(uncond, x, 1000·σ_i)   (CFG<2>: one branch per group)
//             (each branch's prompt K/V kept from step 1 on: later steps run only timestep + image tokens)
//             v = v_u + g·(v_c − v_u)  (g ≤ 1: the cond branch only);  x ← x + (σ_{i+1} − σ_i)·v
// The unconditional sequence is the conditional one with every prompt token replaced by `<cfg>`.
#pragma once

#include <functional>

#include "pdiff/models/hunyuan_image3/transformer.hpp"
#include "pdiff/parallel/cfg_parallel.hpp"

namespace pdiff {

struct HunyuanSampling {
  int steps = 50;
  float guidance = 5.0f;
  float flow_shift = 3.0f;
  std::function<void(int step, int steps)> on_step;  // progress
  bool kv_cache = true;  // keep the prompt's K/V from the first step (false: recompute every step, same result)
};

inline std::vector<float> hunyuan_sigmas(int steps, float shift) {
  PDIFF_CHECK(steps >= 1, "HunyuanImage-3.0: steps (", steps, ") must be >= 1");
  std::vector<float> s(std::size_t(steps) + 1);
  for (int i = 0; i <= steps; ++i) {
    const float u = 1.0f - float(i) / float(steps);
    s[std::size_t(i)] = shift * u / (1.0f + (shift - 1.0f) * u);
  }
  return s;
}

// The conditional sequence with the tokens [begin, end) (the prompt) replaced by `cfg_token`.
inline HunyuanSequence hunyuan_uncond(HunyuanSequence s, std::int64_t begin, std::int64_t end, std::int32_t cfg_token) {
  PDIFF_CHECK(0 <= begin && begin <= end && end <= s.size(), "HunyuanImage-3.0: prompt range [", begin, ", ", end,
              ") is outside the sequence of ", s.size());
  for (std::int64_t i = begin; i < end; ++i) s.ids[std::size_t(i)] = cfg_token;
  return s;
}

// Denoises x (1, C, h, w) from σ = 1 to 0; returns the final latents (the same on every rank).
template <class C, class R>
Tensor<float, OnCpu> hunyuan_denoise(R& rank, const HunyuanImage3Transformer<C>& model, const HunyuanSequence& cond,
                                     const HunyuanSequence& uncond, Tensor<float, OnCpu> x, const HunyuanSampling& o) {
  using L = typename C::layout;
  x = x.clone();  // tensors share storage: the caller's latents stay as they are
  const auto sigmas = hunyuan_sigmas(o.steps, o.flow_shift);
  const bool cfg = o.guidance > 1.0f;
  PDIFF_CHECK(cfg || L::cfg == 1, "HunyuanImage-3.0: CFG<", L::cfg, "> needs guidance > 1 (got ", o.guidance,
              "): guidance <= 1 runs the conditional branch only");
  PDIFF_CHECK(cond.size() == uncond.size() && cond.image_begin == uncond.image_begin,
              "HunyuanImage-3.0: the unconditional sequence must have the conditional one's layout");
  typename HunyuanImage3Transformer<C>::KvCache caches[2];  // per branch (CFG<2>: each group uses its own)
  for (int i = 0; i < o.steps; ++i) {
    const float t = sigmas[std::size_t(i)] * 1000.0f;
    const auto v = cfg_predict<L>(rank, cfg ? 2 : 1, [&](int b) {
      return Prediction{model.velocity(rank, b == 0 ? cond : uncond, x, t, nullptr, o.kv_cache ? &caches[b] : nullptr)};
    });
    const float dt = sigmas[std::size_t(i) + 1] - sigmas[std::size_t(i)], g = o.guidance;
    const float* vc = v[0][0].data();
    const float* vu = cfg ? v[1][0].data() : nullptr;
    float* px = x.data();
    for (std::int64_t j = 0; j < x.numel(); ++j) px[j] += dt * (cfg ? vu[j] + g * (vc[j] - vu[j]) : vc[j]);
    if (o.on_step) o.on_step(i + 1, o.steps);
  }
  return x;
}

}  // namespace pdiff
