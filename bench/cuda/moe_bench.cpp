// The MoE layer's GPU parts at HunyuanImage-3.0's released widths (hidden 4096, 64 experts of
// intermediate 3072, top-8; 4096 image + 256 other tokens = 34 816 routed rows), bf16, one GPU:
//
// | benchmark                 | what                                                              | compare |
// |---------------------------|-------------------------------------------------------------------|---------|
// | BM_moe_experts/grouped    | gate_up, swiglu, down for all 64 experts: two cuBLAS grouped GEMMs | /loop: one cuBLASLt GEMM per expert, same buffers |
// | BM_moe_route/device       | router top-k + grouping by expert on the GPU (warp top-k, CUB sort) | /host: logits to the host, the CPU op, rows back |
// | BM_moe_layer              | MoE<Ctx<Layout<OnCuda>, bf16>>::forward (route, permute, experts, shared expert, combine) | ms per layer; × 32 layers per step |
// Routing comes from random logits (roughly even load, as a trained router). Manual time, device
// synchronised; TFLOP/s counts the expert GEMMs. Run: build/bench/cuda/bench_moe_cuda.
#include <benchmark/benchmark.h>

#include <chrono>

#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/layers/moe.hpp"
#include "pdiff/parallel/launch.hpp"
#include "random_weights.hpp"

using namespace pdiff;

namespace {
constexpr std::int64_t D = 4096, M = 3072, E = 64, Tn = 4352;
constexpr int K = 8;

using bench::randn;
using bench::RandomWeights;

void sync() { PDIFF_CUDA_CHECK(cudaDeviceSynchronize()); }

template <class F>
void timed(benchmark::State& st, F&& f) {
  f();  // warm-up: plans, pools
  sync();
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    sync();
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

// 0: grouped_gemm_nt (it picks the grouped call or one GEMM per expert; grouped_call_used says which),
// 1: one GEMM per expert written out.
void BM_moe_experts(benchmark::State& st) {
  if (cuda_device_count() == 0) return st.SkipWithError("no CUDA device");
  const auto g = moe_group(to<OnCuda>(randn({Tn, E}, 1, 1.0f)), K, true, 1.0f, 0, Tn);
  const std::int64_t n = g.rows();
  const auto x = Tensor<bf16, OnCuda>::zeros({n, D});
  std::vector<Tensor<bf16, OnCuda>> gate_up, down;
  for (std::int64_t e = 0; e < E; ++e)
    gate_up.push_back(Tensor<bf16, OnCuda>::zeros({2 * M, D})), down.push_back(Tensor<bf16, OnCuda>::zeros({D, M}));
  std::vector<const Tensor<bf16, OnCuda>*> pg, pd;
  for (std::int64_t e = 0; e < E; ++e) pg.push_back(&gate_up[std::size_t(e)]), pd.push_back(&down[std::size_t(e)]);
  Tensor<bf16, OnCuda> h({n, 2 * M}), y({n, D});
  const bool grouped = st.range(0) == 0;
  bool used = true;
  timed(st, [&] {
    if (grouped) {
      grouped_gemm_nt(x, std::span<const Tensor<bf16, OnCuda>* const>(pg), std::span<const std::int64_t>(g.count), h);
      used = used && grouped_gemm_used();
      const auto a = swiglu(h);
      grouped_gemm_nt(a, std::span<const Tensor<bf16, OnCuda>* const>(pd), std::span<const std::int64_t>(g.count), y);
      used = used && grouped_gemm_used();
    } else {
      const auto run = [&](const Tensor<bf16, OnCuda>& in, std::vector<Tensor<bf16, OnCuda>>& w, Tensor<bf16, OnCuda>& out) {
        for (std::int64_t e = 0, at = 0; e < E; at += g.count[std::size_t(e)], ++e) {
          if (g.count[std::size_t(e)] == 0) continue;
          auto oe = out.slice(at, at + g.count[std::size_t(e)]);
          gemm(in.slice(at, at + g.count[std::size_t(e)]), w[std::size_t(e)], oe, {.trans_b = true});
        }
      };
      run(x, gate_up, h);
      const auto a = swiglu(h);
      run(a, down, y);
    }
  });
  const double flops = 2.0 * double(n) * double(D) * double(3 * M);
  st.counters["rows"] = double(n);
  st.counters["max_over_mean"] = MoeLoad{g.count}.max_over_mean();
  st.counters["TFLOPs"] = benchmark::Counter(flops * double(st.iterations()) / 1e12, benchmark::Counter::kIsRate);
  if (grouped) st.counters["grouped_call_used"] = used ? 1 : 0;
}
BENCHMARK(BM_moe_experts)->ArgName("loop")->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// 0: on the device, 1: through the host.
void BM_moe_route(benchmark::State& st) {
  if (cuda_device_count() == 0) return st.SkipWithError("no CUDA device");
  const auto logits = to<OnCuda>(randn({Tn, E}, 2, 1.0f));
  const bool device = st.range(0) == 0;
  timed(st, [&] {
    if (device) {
      benchmark::DoNotOptimize(moe_group(logits, K, true, 1.0f, 0, Tn).count.data());
    } else {
      const auto g = moe_group(to<OnCpu>(logits), K, true, 1.0f, 0, Tn);
      const auto token = to<OnCuda>(g.token);
      const auto weight = to<OnCuda>(g.weight);
      benchmark::DoNotOptimize(token.data());
      benchmark::DoNotOptimize(weight.data());
    }
  });
}
BENCHMARK(BM_moe_route)->ArgName("host")->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_moe_layer(benchmark::State& st) {
  if (cuda_device_count() == 0) return st.SkipWithError("no CUDA device");
  using L = Layout<OnCuda>;
  using C = Ctx<L, bf16>;
  MoeConfig cfg{.hidden = D, .intermediate = M, .experts = E, .top_k = K, .shared_intermediate = M};
  MoeLoad load;
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    const auto moe = MoE<C>::load(RandomWeights{}, cfg, rank, "model.layers.0.mlp.");
    const auto x = to_ctx<C>(randn({1, Tn, D}, 3, 1.0f));
    timed(st, [&] { benchmark::DoNotOptimize(moe.forward(rank, x, &load).data()); });
  });
  st.counters["max_over_mean"] = load.max_over_mean();
  st.counters["tokens"] = double(Tn);
}
BENCHMARK(BM_moe_layer)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(20);
}  // namespace

BENCHMARK_MAIN();
