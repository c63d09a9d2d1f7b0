// pdiff/sched/ddpm.hpp — DdpmScheduler: diffusers' DDPMScheduler (epsilon prediction), stochastic.
//
// | setting                | value (diffusers defaults)                                   |
// |------------------------|--------------------------------------------------------------|
// | betas                  | linear 1e-4 … 0.02 over 1000 steps, or scaled_linear         |
// | timesteps              | "leading": (0, r, 2r, …)·reversed, r = 1000 / n              |
// | variance               | fixed_small: (1 − ᾱ_prev)/(1 − ᾱ_t)·β_t, ≥ 1e-20              |
// | clip_sample            | x̂₀ clipped to [−1, 1]                                        |
// step: x̂₀ = (x − √(1−ᾱ_t)·ε)/√ᾱ_t; x' = c₀·x̂₀ + c₁·x; t > 0: x' += √var · z, z ~ N(0, 1) from gen.
#pragma once

#include <algorithm>

#include <cmath>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

struct DdpmScheduler {
  int num_train_timesteps = 1000;
  bool clip_sample = true;
  std::vector<double> alphas_cumprod;
  std::vector<int> timesteps;

  explicit DdpmScheduler(double beta_start = 1e-4, double beta_end = 0.02, bool scaled_linear = false, int train = 1000)
      : num_train_timesteps(train) {
    double prod = 1.0;
    for (int i = 0; i < train; ++i) {
      const double f = train == 1 ? 0.0 : double(i) / (train - 1);
      const double beta = scaled_linear ? std::pow(std::sqrt(beta_start) + f * (std::sqrt(beta_end) - std::sqrt(beta_start)), 2)
                                        : beta_start + f * (beta_end - beta_start);
      prod *= 1.0 - beta;
      alphas_cumprod.push_back(prod);
    }
  }
  void set_timesteps(int n) {
    PDIFF_CHECK(n >= 1 && n <= num_train_timesteps, "DdpmScheduler: num_inference_steps (", n, ") must be in [1, ",
                num_train_timesteps, "]");
    const int r = num_train_timesteps / n;
    timesteps.clear();
    for (int i = n - 1; i >= 0; --i) timesteps.push_back(i * r);
  }
  int steps() const { return int(timesteps.size()); }
  Tensor<float, OnCpu> scale_model_input(const Tensor<float, OnCpu>& x, int) const { return x; }

  void step(const Tensor<float, OnCpu>& eps, Tensor<float, OnCpu>& x, int i, Philox& gen) const {
    PDIFF_CHECK(eps.numel() == x.numel(), "DdpmScheduler: prediction", eps.shape(), " and sample", x.shape(), " differ");
    const int t = timesteps[std::size_t(i)], prev = t - num_train_timesteps / steps();
    const double ap = alphas_cumprod[std::size_t(t)], ap_prev = prev >= 0 ? alphas_cumprod[std::size_t(prev)] : 1.0;
    const double bp = 1.0 - ap, bp_prev = 1.0 - ap_prev, cur_alpha = ap / ap_prev, cur_beta = 1.0 - cur_alpha;
    const float c0 = float(std::sqrt(ap_prev) * cur_beta / bp), c1 = float(std::sqrt(cur_alpha) * bp_prev / bp);
    const float sbp = float(std::sqrt(bp)), sap = float(std::sqrt(ap));
    const float sd = t > 0 ? float(std::sqrt(std::max(bp_prev / bp * cur_beta, 1e-20))) : 0.0f;
    Tensor<float, OnCpu> z(x.shape());
    if (t > 0) gen.fill_normal(z.span());
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      float x0 = (x(k) - sbp * eps(k)) / sap;
      if (clip_sample) x0 = std::min(1.0f, std::max(-1.0f, x0));
      x(k) = c0 * x0 + c1 * x(k) + (t > 0 ? sd * z(k) : 0.0f);
    }
  }
};

}  // namespace pdiff
