// CFG<N>: branches spread over CFG groups, all-gathered, combined on every rank. Final latents are
// bit-identical (memcmp) to serial guidance for deterministic and stochastic samplers, single and
// tuple predictions, 2 and 3 branches, with and without TP; every rank holds the same latents
// after every step; the combine rules equal straightforward formulas.
#include <doctest/doctest.h>

#include <cstring>

#include "../layers/harness.hpp"
#include "pdiff/parallel/cfg_parallel.hpp"
#include "pdiff/sched/ddpm.hpp"
#include "pdiff/sched/euler_ancestral.hpp"
#include "pdiff/sched/flow_match.hpp"
#include "pdiff/sched/guidance.hpp"
#include "pdiff/sched/sampler.hpp"

using namespace pdiff;
using namespace pdiff::test;

static_assert(Sampler<FlowMatchEulerScheduler> && Sampler<DdpmScheduler> && Sampler<EulerAncestralScheduler>);

namespace {
constexpr std::int64_t D = 16, T = 6;

// A toy model with a TP-sharded MLP: branch b conditions on cond[b]; outputs (velocity, aux).
template <class L>
struct ToyModel {
  ColumnParallel<Ctx<L>> up;
  RowParallel<Ctx<L>> down;
  std::vector<Tensor<float>> cond;
  ToyModel(int tp_rank, int branches) : up(D, 32, true), down(32, D, true) {
    auto b1 = random({32}, 2), w2 = random({D, 32}, 3, 0.3f), b2 = random({D}, 4);
    up.load(tp_rank, random({32, D}, 1, 0.3f), &b1);
    down.load(tp_rank, w2, &b2);
    for (int b = 0; b < branches; ++b) cond.push_back(random({1, T, D}, 10 + std::uint64_t(b), 0.5f));
  }
  template <class R>
  Prediction operator()(R& rank, int b, const Tensor<float>& x) const {
    auto h = add(x, cond[std::size_t(b)]);
    auto v = down.forward(rank, silu(up.forward(rank, h)));
    Tensor<float> aux(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i) aux(i) = x(i) * float(b + 1);
    return {v, aux};
  }
};

enum class Kind { flow, ddpm, euler_a };

// Runs `steps` guided steps on layout L; returns every rank's final latents (and checks lockstep).
template <class L>
std::vector<Tensor<float>> guided_run(Kind kind, int branches, bool tuple, int steps = 5) {
  std::vector<Tensor<float>> out(L::world_size);
  std::vector<std::vector<Tensor<float>>> per_step(std::size_t(steps), std::vector<Tensor<float>>(L::world_size));
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    ToyModel<L> model(rank.coords.tp, branches);
    auto x = random({1, T, D}, 99);
    Philox gen{1234, 0};  // the same seed on every rank
    FlowMatchEulerScheduler flow;
    DdpmScheduler ddpm;
    EulerAncestralScheduler ea;
    flow.set_timesteps(steps, 0.0);
    ddpm.set_timesteps(steps);
    ea.set_timesteps(steps);
    for (int i = 0; i < steps; ++i) {
      const Tensor<float> in = kind == Kind::euler_a ? ea.scale_model_input(x, i) : x;
      auto preds = cfg_predict<L>(rank, branches, [&](int b) {
        auto p = model(rank, b, in);
        if (!tuple) p.resize(1);
        return p;
      });
      GuidanceStep st{i, 1.0f - float(i) / steps};
      TupleGuidance combine;
      if (branches == 2) combine.rules.push_back(ClassicCfg{3.5f});
      else combine.rules.push_back(BagelCfg{4.0f, 1.5f, Renorm::global, 0.0f, 0.3f, 1.0f});
      if (tuple) combine.rules.push_back(PositiveOnly{});
      auto v = combine(preds, st);
      if (kind == Kind::flow) flow.step(v[0], x, i, gen);
      else if (kind == Kind::ddpm) ddpm.step(v[0], x, i, gen);
      else ea.step(v[0], x, i, gen);
      if (tuple) add_(x, v[1]);  // the aux output feeds back, so its rule matters
      per_step[std::size_t(i)][std::size_t(rank.index)] = x.clone();
    }
    out[std::size_t(rank.index)] = x;
  });
  for (auto& s : per_step)
    for (auto& r : s) CHECK(std::memcmp(r.data(), s[0].data(), r.bytes()) == 0);
  return out;
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}
}  // namespace

TEST_CASE("CFG<2> is bit-identical to serial two-branch guidance (every sampler, single and tuple)") {
  for (Kind k : {Kind::flow, Kind::ddpm, Kind::euler_a})
    for (bool tuple : {false, true}) {
      CAPTURE(int(k));
      CAPTURE(tuple);
      auto serial = guided_run<Layout<OnCpu>>(k, 2, tuple)[0];
      for (auto& y : guided_run<Layout<CFG<2>, OnCpu>>(k, 2, tuple)) CHECK(same_bits(y, serial));
    }
}

TEST_CASE("three branches on CFG<2> and CFG<3> equal serial") {
  auto serial = guided_run<Layout<OnCpu>>(Kind::ddpm, 3, false)[0];
  for (auto& y : guided_run<Layout<CFG<2>, OnCpu>>(Kind::ddpm, 3, false)) CHECK(same_bits(y, serial));
  for (auto& y : guided_run<Layout<CFG<3>, OnCpu>>(Kind::ddpm, 3, false)) CHECK(same_bits(y, serial));
}

TEST_CASE("TP<2> x CFG<2> is bit-identical to TP<2>") {
  auto tp = guided_run<Layout<TP<2>, OnCpu>>(Kind::euler_a, 2, true)[0];
  for (auto& y : guided_run<Layout<TP<2>, CFG<2>, OnCpu>>(Kind::euler_a, 2, true)) CHECK(same_bits(y, tp));
  auto serial = guided_run<Layout<OnCpu>>(Kind::euler_a, 2, true)[0];
  CHECK(rel_err(tp, serial) < 1e-5);
}

TEST_CASE("one all_gather of the prediction per step and slot, counted") {
  std::uint64_t sent = 0;
  launch<Layout<CFG<2>, OnCpu>>({.mode = Launch::threads}, [&](auto& rank) {
    auto x = random({1, T, D}, 5);
    for (int step = 0; step < 3; ++step)
      (void)cfg_predict<Layout<CFG<2>, OnCpu>>(rank, 2, [&](int b) { return Prediction{add(x, random({1, T, D}, std::uint64_t(b)))}; });
    if (rank.index == 0) sent = rank.cfg.stats().all_gather;
  });
  CHECK(sent == 3 * (2 - 1) * T * D * sizeof(float));  // (N−1)·n elements per all_gather
}

TEST_CASE("more CFG groups than branches is a clear error") {
  CHECK_THROWS_WITH_AS((guided_run<Layout<CFG<3>, OnCpu>>(Kind::flow, 2, false)),
                       doctest::Contains("CFG<3>: 3 guidance groups but only 2 branches"), Error);
}

TEST_CASE("combine rules equal their formulas; interval and renorm") {
  auto pos = random({2, 3, 4}, 1), neg = random({2, 3, 4}, 2), img = random({2, 3, 4}, 3);
  const Tensor<float> two[] = {pos, neg};
  auto c = ClassicCfg{2.0f}(two, {});
  for (std::int64_t i = 0; i < c.numel(); ++i) CHECK(c(i) == doctest::Approx(neg(i) + 2.0f * (pos(i) - neg(i))));
  auto outside = ClassicCfg{2.0f, Renorm::none, 0.0f, 0.5f, 1.0f}(two, {0, 0.2f});
  CHECK(rel_err(outside, pos) == 0.0);
  // global renorm: ‖result‖ = ‖pos‖ when the guided norm is larger (scale clamped to ≤ 1)
  auto r = ClassicCfg{5.0f, Renorm::global}(two, {});
  double nr = 0, np = 0;
  for (std::int64_t i = 0; i < r.numel(); ++i) nr += double(r(i)) * r(i), np += double(pos(i)) * pos(i);
  CHECK(std::sqrt(nr) == doctest::Approx(std::sqrt(np)).epsilon(1e-5));
  // BAGEL text_channel: per-row renorm after text guidance, then image guidance
  const Tensor<float> three[] = {pos, neg, img};
  auto bg = BagelCfg{4.0f, 2.0f, Renorm::text_channel, 0.0f}(three, {0, 0.7f});
  for (std::int64_t row = 0; row < 6; ++row) {
    double nv = 0, nt = 0;
    float t[4];
    for (int d = 0; d < 4; ++d) {
      t[d] = neg(row * 4 + d) + 4.0f * (pos(row * 4 + d) - neg(row * 4 + d));
      nv += double(pos(row * 4 + d)) * pos(row * 4 + d), nt += double(t[d]) * t[d];
    }
    const double s = std::min(1.0, std::sqrt(nv) / (std::sqrt(nt) + 1e-8));
    for (int d = 0; d < 4; ++d)
      CHECK(bg(row * 4 + d) == doctest::Approx(img(row * 4 + d) + 2.0 * (t[d] * s - img(row * 4 + d))).epsilon(1e-5));
  }
  auto off = BagelCfg{}(three, {0, 0.2f});  // outside (0.4, 1]: no guidance
  CHECK(rel_err(off, pos) == 0.0);
}
