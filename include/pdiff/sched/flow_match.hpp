// pdiff/sched/flow_match.hpp — FlowMatchEulerScheduler (diffusers' FlowMatchEulerDiscreteScheduler as
// FLUX.2 configures it) and FLUX.2's empirical μ.
//
// | step                      | formula (fp32 where diffusers computes in fp32)                       |
// |---------------------------|------------------------------------------------------------------------|
// | base sigmas               | linspace(1, 1/N, N) (float64 → float32)                               |
// | dynamic shifting, exponential | σ' = e^μ / (e^μ + (1/σ − 1))                                       |
// | dynamic shifting, linear  | σ' = μ / (μ + (1/σ − 1))                                               |
// | static shift s            | σ' = s·σ / (1 + (s − 1)·σ)                                             |
// | timesteps                 | 1000·σ'; sigmas get a final 0                                          |
// | step(v, x, i)             | x + (σ_{i+1} − σ_i)·v                                                  |
// Config options that change the schedule in ways not implemented (karras/exponential/beta sigmas,
// shift_terminal, invert_sigmas, stochastic_sampling) are rejected with an error naming them.
#pragma once

#include <cmath>
#include <filesystem>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/core/tensor.hpp"
#include "pdiff/io/config.hpp"

namespace pdiff {

// FLUX.2's compute_empirical_mu(image_seq_len, num_steps), in double like Python floats.
inline double flux2_empirical_mu(std::int64_t image_seq_len, int num_steps) {
  const double a1 = 8.73809524e-05, b1 = 1.89833333, a2 = 0.00016927, b2 = 0.45666666;
  const double L = double(image_seq_len);
  if (image_seq_len > 4300) return a2 * L + b2;
  const double m200 = a2 * L + b2, m10 = a1 * L + b1;
  const double a = (m200 - m10) / 190.0, b = m200 - 200.0 * a;
  return a * num_steps + b;
}

struct FlowMatchEulerScheduler {
  int num_train_timesteps = 1000;
  double shift = 1.0;
  bool use_dynamic_shifting = false;
  bool exponential = true;  // time_shift_type
  std::vector<float> sigmas;     // N + 1, ending in 0
  std::vector<float> timesteps;  // N

  static FlowMatchEulerScheduler from(const JsonConfig& c) {
    FlowMatchEulerScheduler s;
    s.num_train_timesteps = c.get_or<int>("num_train_timesteps", 1000);
    s.shift = c.get_or<double>("shift", 1.0);
    s.use_dynamic_shifting = c.get_or<bool>("use_dynamic_shifting", false);
    const std::string type = c.get_or<std::string>("time_shift_type", "exponential");
    PDIFF_CHECK(type == "exponential" || type == "linear", "FlowMatchEulerScheduler ", c.where(), ": time_shift_type '",
                type, "' is not exponential or linear");
    s.exponential = type == "exponential";
    for (const char* k : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "invert_sigmas",
                          "stochastic_sampling", "use_flow_sigmas"})
      PDIFF_CHECK(!c.get_or<bool>(k, false), "FlowMatchEulerScheduler ", c.where(), ": ", k, " is not supported");
    PDIFF_CHECK(c.is_null("shift_terminal"), "FlowMatchEulerScheduler ", c.where(), ": shift_terminal is not supported");
    return s;
  }
  static FlowMatchEulerScheduler load(const std::filesystem::path& dir) {
    return from(JsonConfig::load(dir / "scheduler_config.json"));
  }

  // mu is required with dynamic shifting (FLUX.2: flux2_empirical_mu of the image token count).
  void set_timesteps(int n, double mu = 0.0) {
    PDIFF_CHECK(n >= 1, "FlowMatchEulerScheduler: num_inference_steps (", n, ") must be >= 1");
    sigmas.assign(std::size_t(n), 0.0f);
    const double step = n == 1 ? 0.0 : (1.0 / n - 1.0) / double(n - 1);  // numpy.linspace's arithmetic
    for (int i = 0; i < n; ++i) {
      const double lin = i == n - 1 ? 1.0 / n : double(i) * step + 1.0;
      float s = float(lin);
      if (use_dynamic_shifting) {
        const float e = exponential ? float(std::exp(mu)) : float(mu);
        s = e / (e + (1.0f / s - 1.0f));
      } else {
        s = float(shift) * s / (1.0f + (float(shift) - 1.0f) * s);
      }
      sigmas[std::size_t(i)] = s;
    }
    timesteps.resize(std::size_t(n));
    for (int i = 0; i < n; ++i) timesteps[std::size_t(i)] = sigmas[std::size_t(i)] * float(num_train_timesteps);
    sigmas.push_back(0.0f);
  }
  int steps() const { return int(timesteps.size()); }

  Tensor<float, OnCpu> scale_model_input(const Tensor<float, OnCpu>& x, int) const { return x; }
  // The Sampler interface: deterministic, the generator is not used.
  void step(const Tensor<float, OnCpu>& v, Tensor<float, OnCpu>& x, int i, Philox&) const { step(v, x, i); }

  // x ← x + (σ_{i+1} − σ_i)·v, in place.
  void step(const Tensor<float, OnCpu>& v, Tensor<float, OnCpu>& x, int i) const {
    PDIFF_CHECK(i >= 0 && i < steps(), "FlowMatchEulerScheduler: step ", i, " of ", steps());
    PDIFF_CHECK(v.numel() == x.numel(), "FlowMatchEulerScheduler: prediction", v.shape(), " and latents", x.shape(),
                " differ");
    const float dt = sigmas[std::size_t(i) + 1] - sigmas[std::size_t(i)];
    for (std::int64_t k = 0; k < x.numel(); ++k) x(k) = x(k) + dt * v(k);
  }
};

}  // namespace pdiff
