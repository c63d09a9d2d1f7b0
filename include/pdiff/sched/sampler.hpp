// pdiff/sched/sampler.hpp — the interface every sampler shares, as a concept.
//
// | member                        | meaning                                                         |
// |-------------------------------|-----------------------------------------------------------------|
// | set_timesteps(n)              | choose n steps                                                  |
// | steps(), timesteps[i]         | the step count and the model time of step i                     |
// | scale_model_input(x, i)       | what the model sees at step i (identity for most samplers)      |
// | step(pred, x, i, gen)         | x ← the next sample; stochastic samplers draw from gen (Philox): seeded the same on every rank, all ranks stay in lockstep |
// Samplers: FlowMatchEulerScheduler (deterministic), DdpmScheduler, EulerAncestralScheduler.
#pragma once

#include <concepts>

#include "pdiff/core/philox.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class S>
concept Sampler = requires(S& s, const S& cs, const Tensor<float, OnCpu>& v, Tensor<float, OnCpu>& x, Philox& g) {
  s.set_timesteps(1);
  { cs.steps() } -> std::convertible_to<int>;
  cs.timesteps[0];
  { cs.scale_model_input(v, 0) } -> std::same_as<Tensor<float, OnCpu>>;
  cs.step(v, x, 0, g);
};

}  // namespace pdiff
