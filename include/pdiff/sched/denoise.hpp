// pdiff/sched/denoise.hpp — the denoising loop every pipeline plugs into.
//
//   for i in steps: v = predict(i, t_i, x); x = scheduler.step(v, x, i); progress
// `predict(i, t, x)` returns the model's prediction for latents x at step i (t = timesteps[i], the
// scheduler's 1000·σ units); models convert t to what they expect (FLUX.2 takes t/1000 and multiplies
// back). Every rank runs the loop; only the bar of the rank that owns it draws.
#pragma once

#include "pdiff/io/progress.hpp"
#include "pdiff/sched/flow_match.hpp"

namespace pdiff {

template <class Scheduler, class Predict>
void denoise(const Scheduler& sched, Tensor<float, OnCpu>& latents, Predict&& predict, ProgressBar* bar = nullptr) {
  for (int i = 0; i < sched.steps(); ++i) {
    auto v = predict(i, sched.timesteps[std::size_t(i)], latents);
    sched.step(v, latents, i);
    if (bar) bar->update(i + 1);
  }
  if (bar) bar->finish();
}

}  // namespace pdiff
