// pdiff/sched/euler_ancestral.hpp — EulerAncestralScheduler: diffusers' EulerAncestralDiscreteScheduler
// (epsilon prediction, linear betas, "linspace" timestep spacing), stochastic.
//
//   σ_t = √((1 − ᾱ_t)/ᾱ_t), interpolated at timesteps linspace(0, T−1, n) reversed; σ_n = 0
//   model input x/√(σ² + 1); initial noise scaled by √(σ₀² + 1)
//   σ_up = √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²), σ_down = √(σ_{i+1}² − σ_up²)
//   x ← x + ε·(σ_down − σ_i) + z·σ_up,  z ~ N(0, 1) from gen
#pragma once

#include <algorithm>

#include <cmath>
#include <vector>

#include "pdiff/sched/ddpm.hpp"

namespace pdiff {

struct EulerAncestralScheduler {
  std::vector<double> train_sigmas;  // per training timestep
  std::vector<float> timesteps, sigmas;

  explicit EulerAncestralScheduler(double beta_start = 1e-4, double beta_end = 0.02, bool scaled_linear = false) {
    DdpmScheduler d(beta_start, beta_end, scaled_linear);
    for (double a : d.alphas_cumprod) train_sigmas.push_back(std::sqrt((1.0 - a) / a));
  }
  void set_timesteps(int n) {
    PDIFF_CHECK(n >= 1, "EulerAncestralScheduler: num_inference_steps (", n, ") must be >= 1");
    const double T = double(train_sigmas.size() - 1);
    timesteps.clear();
    sigmas.clear();
    for (int i = 0; i < n; ++i) {
      const double t = n == 1 ? T : T - T * i / (n - 1);  // linspace(0, T, n) reversed
      const std::size_t lo = std::size_t(std::floor(t)), hi = std::min(lo + 1, train_sigmas.size() - 1);
      const double f = t - double(lo);
      timesteps.push_back(float(t));
      sigmas.push_back(float(train_sigmas[lo] * (1.0 - f) + train_sigmas[hi] * f));
    }
    sigmas.push_back(0.0f);
  }
  int steps() const { return int(timesteps.size()); }
  float init_noise_sigma() const { return std::sqrt(sigmas[0] * sigmas[0] + 1.0f); }
  Tensor<float, OnCpu> scale_model_input(const Tensor<float, OnCpu>& x, int i) const {
    const float s = sigmas[std::size_t(i)], inv = 1.0f / std::sqrt(s * s + 1.0f);
    Tensor<float, OnCpu> o(x.shape());
    for (std::int64_t k = 0; k < x.numel(); ++k) o(k) = x(k) * inv;
    return o;
  }
  void step(const Tensor<float, OnCpu>& eps, Tensor<float, OnCpu>& x, int i, Philox& gen) const {
    PDIFF_CHECK(eps.numel() == x.numel(), "EulerAncestralScheduler: prediction", eps.shape(), " and sample", x.shape(),
                " differ");
    const float s = sigmas[std::size_t(i)], s_to = sigmas[std::size_t(i) + 1];
    const float up = std::sqrt(s_to * s_to * (s * s - s_to * s_to) / (s * s));
    const float down = std::sqrt(s_to * s_to - up * up), dt = down - s;
    Tensor<float, OnCpu> z(x.shape());
    gen.fill_normal(z.span());
    for (std::int64_t k = 0; k < x.numel(); ++k) x(k) = x(k) + eps(k) * dt + z(k) * up;
  }
};

}  // namespace pdiff
