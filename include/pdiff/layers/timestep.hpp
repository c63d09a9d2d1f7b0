// pdiff/layers/timestep.hpp — sinusoidal timestep features and the timestep MLP of DiTs.
//
// timestep_features(t, dim, flip_sin_to_cos, shift, scale) is diffusers' get_timestep_embedding:
//   half = dim/2, freq_i = exp(−ln(10000)·i/(half − shift)), arg = scale·t·freq,
//   features = [sin, cos] (or [cos, sin] when flip_sin_to_cos); t: (B) → (B, dim).
// TimestepMLP: linear_1 → SiLU → linear_2, replicated (it is tiny).
#pragma once

#include <cmath>
#include <span>

#include "pdiff/layers/replicated.hpp"

namespace pdiff {

inline Tensor<float, OnCpu> timestep_features(std::span<const float> t, int dim, bool flip_sin_to_cos = true,
                                              float downscale_freq_shift = 0.0f, float scale = 1.0f,
                                              double max_period = 10000.0) {
  PDIFF_CHECK(dim % 2 == 0, "timestep_features: dim (", dim, ") must be even");
  const int half = dim / 2;
  Tensor<float, OnCpu> out({std::int64_t(t.size()), dim});
  for (std::size_t b = 0; b < t.size(); ++b)
    for (int i = 0; i < half; ++i) {
      // fp32 like diffusers: exponent = −ln(max_period)·i / (half − shift), freq = exp(exponent)
      float expo = -float(std::log(max_period)) * float(i) / (float(half) - downscale_freq_shift);
      float freq = std::exp(expo);
      float arg = t[b] * freq * scale;
      float s = std::sin(arg), c = std::cos(arg);
      out(std::int64_t(b) * dim + i) = flip_sin_to_cos ? c : s;
      out(std::int64_t(b) * dim + half + i) = flip_sin_to_cos ? s : c;
    }
  return out;
}

template <class C>
struct TimestepMLP {
  Replicated<C> linear_1, linear_2;
  TimestepMLP() = default;
  TimestepMLP(std::int64_t in, std::int64_t dim, bool bias) : linear_1(in, dim, bias), linear_2(dim, dim, bias) {}
  template <class R>
  typename C::tensor forward(R& rank, const Tensor<float, OnCpu>& features) const {
    return linear_2.forward(rank, silu(linear_1.forward(rank, to_ctx<C>(features))));
  }
};

}  // namespace pdiff
