// Attention and MLP block time per layout on CPU thread ranks, and the bytes each rank sent,
// compared with the analytic formulas (counters bytes_per_rank and formula_bytes; ratio must be 1).
//   Ulysses<U>: 4 all_to_all of (U−1)/U of the local q/k/v/out: 4·(U−1)/U · B·(S/U)·(H/tp)·D·4 bytes
//   Ring<R>:    R−1 exchanges of [k; v]: (R−1)·2·B·(S/R)·(Hkv/(tp·U))·D·4 bytes
//   TP<T>:      one all_reduce of (B, S/(U·R), hidden) after o-proj: 2·(T−1)/T · B·S/(U·R)·hidden·4 bytes
#include <benchmark/benchmark.h>

#include <chrono>

#include "pdiff/pdiff.hpp"
#include "../bench_rank.hpp"

using namespace pdiff;

namespace {
// largest |a − b|
float max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
  float m = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a(i) - b(i)));
  return m;
}

constexpr std::int64_t B = 1, S = 1024, H = 16, D = 64, hidden = H * D;

Tensor<float> randn(Shape s, std::uint64_t seed, float scale) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  for (auto& v : t.span()) v *= scale;
  return t;
}

template <class L>
double attention_formula_bytes() {
  const double local = double(B) * double(S) / (L::ulysses * L::ring) * double(H) / L::tp * double(D);
  double bytes = 0;
  if (L::ulysses > 1) bytes += 4.0 * (L::ulysses - 1) / L::ulysses * local * 4;
  // under Ulysses the ring carries the heads this Ulysses rank holds after its all_to_all
  if (L::ring > 1) bytes += (L::ring - 1) * 2.0 * double(B) * double(S) / L::ring * double(H) / (L::tp * L::ulysses) * double(D) * 4;
  if (L::tp > 1) bytes += 2.0 * (L::tp - 1) / L::tp * double(B) * double(S) / (L::ulysses * L::ring) * double(hidden) * 4;
  return bytes;
}

template <class L>
void BM_attention(benchmark::State& st) {
  using C = Ctx<L>;
  const float ws = 1.0f / std::sqrt(float(hidden));
  auto wq = randn({hidden, hidden}, 1, ws), wk = randn({hidden, hidden}, 2, ws), wv = randn({hidden, hidden}, 3, ws),
       wo = randn({hidden, hidden}, 4, ws), x = randn({B, S, hidden}, 5, 1.0f);
  double secs = 0;
  std::uint64_t sent0 = 0;  // bytes rank 0 sent during the forward (sub-communicators start at 0)
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      SelfAttention<C> att(hidden, D, H, H, false, false, QkNorm::none, RopeStyle::none);
      att.qkv.load(rank.coords.tp, wq, wk, wv);
      att.o.load(rank.coords.tp, wo);
      auto xl = sp_shard<L>(rank, x);
      rank.world.barrier();
      auto t0 = std::chrono::steady_clock::now();
      auto y = att.forward(rank, xl);
      rank.world.barrier();
      if (rank.index == 0) secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(y.data());
      if (rank.index == 0) sent0 = bench::tp_sp_bytes_sent(rank);
    });
    st.SetIterationTime(secs);
  }
  st.counters["bytes_per_rank"] = double(sent0);
  st.counters["formula_bytes"] = attention_formula_bytes<L>();
  st.counters["ranks"] = L::world_size;
}

template <class L>
void BM_mlp(benchmark::State& st) {
  using C = Ctx<L>;
  const float ws = 1.0f / std::sqrt(float(hidden));
  auto wg = randn({3 * hidden, hidden}, 6, ws), wu = randn({3 * hidden, hidden}, 7, ws),
       wd = randn({hidden, 3 * hidden}, 8, ws), x = randn({B, S / 4, hidden}, 9, 1.0f);
  double secs = 0;
  for (auto _ : st) {
    launch<L>({.mode = Launch::threads}, [&](auto& rank) {
      SwiGLUMLP<C> mlp(hidden, 3 * hidden, false);
      const Tensor<float>* gu[] = {&wg, &wu};
      mlp.gate_up.load(rank.coords.tp, gu);
      mlp.down.load(rank.coords.tp, wd);
      rank.world.barrier();
      auto t0 = std::chrono::steady_clock::now();
      auto y = mlp.forward(rank, x);
      rank.world.barrier();
      if (rank.index == 0) secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      benchmark::DoNotOptimize(y.data());
    });
    st.SetIterationTime(secs);
  }
  st.counters["ranks"] = L::world_size;
}
}  // namespace

// A fused q | k | v projection on the CPU, serial, at FLUX.2-klein's width (3072 = 24 x 128), 1280 tokens:
// QKVParallel::forward (one GEMM per part on its weight rows) against the former way (one GEMM over the
// fused weight, then three narrow copies), in one run; ratio = former / now (> 1: faster now).
void BM_qkv_parts(benchmark::State& st) {
  using C = Ctx<Layout<OnCpu>>;
  constexpr std::int64_t n = 1280, h = 24, d = 128, w = h * d;
  const auto x = randn({1, n, w}, 7, 1.0f), wq = randn({w, w}, 8, 0.02f), wk = randn({w, w}, 9, 0.02f),
             wv = randn({w, w}, 10, 0.02f);
  QKVParallel<C> qkv(w, d, h, h, false);
  qkv.load(0, wq, wk, wv);
  SelfComm none;
  double now_s = 0, former_s = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    auto a = qkv.forward(none, x);
    benchmark::DoNotOptimize(a.v.data());
    auto t1 = std::chrono::steady_clock::now();
    auto y = qkv.core.matmul(x);
    auto q = narrow(y, 2, 0, w), k = narrow(y, 2, w, w), v = narrow(y, 2, 2 * w, w);
    benchmark::DoNotOptimize(v.data());
    auto t2 = std::chrono::steady_clock::now();
    now_s += std::chrono::duration<double>(t1 - t0).count();
    former_s += std::chrono::duration<double>(t2 - t1).count();
    st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (max_abs_diff(a.q.view({1, n, w}), q) > 1e-4f) st.SkipWithError("the two ways differ");
  }
  st.counters["former_ms"] = 1e3 * former_s / double(st.iterations());
  st.counters["ratio"] = former_s / now_s;
}

BENCHMARK(BM_qkv_parts)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(5);
BENCHMARK_TEMPLATE(BM_attention, Layout<OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_attention, Layout<TP<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_attention, Layout<Ulysses<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_attention, Layout<Ring<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_attention, Layout<Ulysses<2>, Ring<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_attention, Layout<TP<2>, Ulysses<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_mlp, Layout<OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_mlp, Layout<TP<2>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_TEMPLATE(BM_mlp, Layout<TP<4>, OnCpu>)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_MAIN();
