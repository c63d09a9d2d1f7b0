// One guided denoising step (two branches, a TP-free transformer-sized MLP stack per branch):
// serial vs CFG<2> on two thread ranks. Reports the step time and the bytes each rank sent per step
// (formula: one all_gather of the prediction per step, (N−1)·numel·4 bytes).
#include <benchmark/benchmark.h>

#include <chrono>

#include "pdiff/parallel/cfg_parallel.hpp"
#include "pdiff/pdiff.hpp"
#include "pdiff/sched/guidance.hpp"

using namespace pdiff;

namespace {
constexpr std::int64_t T = 512, D = 256, layers = 4;

Tensor<float> randn(Shape s, std::uint64_t seed, float scale) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  for (auto& v : t.span()) v *= scale;
  return t;
}

template <class L>
void BM_guided_step(benchmark::State& st) {
  std::vector<Tensor<float>> w;
  for (int i = 0; i < layers; ++i) w.push_back(randn({D, D}, std::uint64_t(i + 1), 1.0f / 16));
  auto x = randn({1, T, D}, 50, 1.0f), pos = randn({1, T, D}, 51, 1.0f), neg = randn({1, T, D}, 52, 1.0f);
  double secs = 0;
  std::uint64_t bytes = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      rank.world.barrier();
      auto t0 = std::chrono::steady_clock::now();
      auto preds = cfg_predict<L>(rank, 2, [&](int b) {
        auto h = add(x, b == 0 ? pos : neg);
        for (auto& wi : w) {
          Tensor<float> y(h.shape());
          auto y2 = y.view({T, D});
          gemm(h.view({T, D}), wi, y2, {.trans_b = true});
          h = silu(y);
        }
        return Prediction{h};
      });
      const Tensor<float> pair[] = {preds[0][0], preds[1][0]};
      auto v = ClassicCfg{4.0f}(pair, {});
      benchmark::DoNotOptimize(v.data());
      rank.world.barrier();
      if (rank.index == 0) {
        secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if constexpr (L::cfg > 1) bytes = rank.cfg.stats().all_gather;
      }
    });
    st.SetIterationTime(secs);
  }
  st.counters["bytes_per_step"] = double(bytes);
  st.counters["formula_bytes"] = L::cfg > 1 ? double((L::cfg - 1) * T * D * 4) : 0.0;
}
}  // namespace

BENCHMARK_TEMPLATE(BM_guided_step, Layout<OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_guided_step, Layout<CFG<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_MAIN();
