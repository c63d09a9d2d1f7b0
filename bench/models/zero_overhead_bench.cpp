// Zero overhead, measured (issue 13 item 3): FLUX.2's single-stream block as the library runs it —
// Flux2SingleBlock<Ctx<Layout<OnCpu>>> (no policies: every parallel step resolves to nothing at compile
// time) called through a serial Rank — against the same forward written by hand with the backend ops and
// the same weight tensors (layer_norm_modulate, one GEMM, per-head RMSNorm, RoPE, attention, SwiGLU, cat,
// one GEMM, gated residual). Shapes of the real-shape bench (12 heads × 128, MLP 3×, 1280 tokens) and a
// small overhead-bound one (8 × 64, 320 tokens). The two run interleaved in one process, 1 GEMM thread.
// Counter ratio = library time / hand-written time (issue: ≤ 1.01); the outputs are checked equal first.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "pdiff/models/flux2/blocks.hpp"
#include "pdiff/pdiff.hpp"

using namespace pdiff;

namespace {
using L = Layout<OnCpu>;
using C = Ctx<L>;

Tensor<float> random(Shape s, std::uint64_t seed, float scale) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  for (auto& v : t.span()) v *= scale;
  return t;
}

struct Case {
  std::int64_t heads, hd, tokens;
  std::int64_t D() const { return heads * hd; }
  std::int64_t M() const { return 3 * D(); }
};

struct Inputs {
  Tensor<float> w_in, w_out, wq, wk, x, mod;
  RopeTable<OnCpu> rope;
};

Inputs make(const Case& c) {
  const std::int64_t D = c.D(), M = c.M();
  Inputs in;
  in.w_in = random({3 * D + 2 * M, D}, 1, 0.02f);
  in.w_out = random({D, D + M}, 2, 0.02f);
  in.wq = random({c.hd}, 3, 0.1f);
  in.wk = random({c.hd}, 4, 0.1f);
  for (auto* w : {&in.wq, &in.wk})
    for (auto& v : w->span()) v += 1.0f;
  in.x = random({1, c.tokens, D}, 5, 1.0f);
  in.mod = random({1, 3 * D}, 6, 0.1f);
  std::vector<std::int64_t> pos(std::size_t(c.tokens));
  std::iota(pos.begin(), pos.end(), 0);
  in.rope = rope_table_1d(pos, int(c.hd), 2000.0);
  return in;
}

Flux2SingleBlock<C> library_block(const Case& c, const Inputs& in) {
  const std::int64_t D = c.D(), M = c.M();
  Flux2SingleBlock<C> b;
  b.head_dim = c.hd;
  b.to_qkv_mlp = MergedColumnParallel<C>(D, {D, D, D, M, M}, false, Sources::fused);
  b.to_qkv_mlp.core.set(in.w_in);
  b.norm_q = RMSNorm<C>(c.hd, b.eps);
  b.norm_k = RMSNorm<C>(c.hd, b.eps);
  b.norm_q.load(in.wq);
  b.norm_k.load(in.wk);
  b.to_out = RowParallel<C>(std::vector<std::int64_t>{D, M}, D, false);
  b.to_out.core.set(in.w_out);
  return b;
}

// The same block by hand: backend ops on plain CPU tensors, no layer types, no rank.
void hand_written(const Case& c, const Inputs& in, Tensor<float>& x, float eps) {
  const std::int64_t D = c.D(), M = c.M(), n = c.tokens;
  auto part = [&](const Tensor<float>& t, int i) { return narrow(t, -1, i * D, D); };
  auto hm = layer_norm_modulate(x, eps, part(in.mod, 0), part(in.mod, 1));
  Tensor<float> h({1, n, 3 * D + 2 * M});
  auto h2 = h.view({n, 3 * D + 2 * M});
  gemm(hm.view({n, D}), in.w_in, h2, {.trans_b = true});
  auto q = rms_norm(narrow(h, -1, 0, D).view({1, n, c.heads, c.hd}), in.wq, eps);
  auto k = rms_norm(narrow(h, -1, D, D).view({1, n, c.heads, c.hd}), in.wk, eps);
  apply_rope_interleaved(q, in.rope);
  apply_rope_interleaved(k, in.rope);
  auto a = attention(q, k, narrow(h, -1, 2 * D, D).view({1, n, c.heads, c.hd})).view({1, n, D});
  auto mlp = swiglu(narrow(h, -1, 3 * D, 2 * M));
  auto cat_in = cat(a, mlp, -1);
  Tensor<float> o({1, n, D});
  auto o2 = o.view({n, D});
  gemm(cat_in.view({n, D + M}), in.w_out, o2, {.trans_b = true});
  gated_add(x, part(in.mod, 2), o);
}

void BM_single_block(benchmark::State& st) {
  const Case c{st.range(0), st.range(1), st.range(2)};
  const Inputs in = make(c);
  double lib_s = 0, hand_s = 0;
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    const auto block = library_block(c, in);
    // equal outputs first: the comparison is of the same computation
    auto xa = in.x.clone(), xb = in.x.clone();
    block.forward(rank, xa, in.mod, in.rope);
    hand_written(c, in, xb, block.eps);
    double diff = 0;
    for (std::int64_t i = 0; i < xa.numel(); ++i) diff = std::max(diff, double(std::abs(xa(i) - xb(i))));
    if (diff > 1e-5) {
      std::fprintf(stderr, "zero_overhead_bench: library and hand-written blocks differ by %g\n", diff);
      std::exit(1);
    }
    using clock = std::chrono::steady_clock;
    auto time_library = [&] {
      auto x1 = in.x.clone();
      const auto t0 = clock::now();
      block.forward(rank, x1, in.mod, in.rope);
      benchmark::DoNotOptimize(x1.data());
      return std::chrono::duration<double>(clock::now() - t0).count();
    };
    auto time_hand = [&] {
      auto x2 = in.x.clone();
      const auto t0 = clock::now();
      hand_written(c, in, x2, block.eps);
      benchmark::DoNotOptimize(x2.data());
      return std::chrono::duration<double>(clock::now() - t0).count();
    };
    bool library_first = true;  // alternate, so neither side always runs on the other's warm caches
    for (auto _ : st) {
      double tl, th;
      if (library_first) tl = time_library(), th = time_hand();
      else th = time_hand(), tl = time_library();
      library_first = !library_first;
      lib_s += tl;
      hand_s += th;
      st.SetIterationTime(tl);
    }
  });
  st.counters["library_ms"] = 1e3 * lib_s / double(st.iterations());
  st.counters["hand_ms"] = 1e3 * hand_s / double(st.iterations());
  st.counters["ratio"] = lib_s / hand_s;
}
}  // namespace

BENCHMARK(BM_single_block)->Args({8, 64, 320})->Iterations(40)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_single_block)->Args({12, 128, 1280})->Iterations(6)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
