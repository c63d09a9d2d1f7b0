// CPU GEMM through pdiff's backend vs Eigen called directly, on the same buffers, and vs OpenBLAS's
// cblas_sgemm called directly when the build uses it (pdiff's overhead over the library: ratio ≥ 0.95).
// Shapes: small linear layers, and FLUX.2-architecture ones at head dim 128 (hidden 1536 = 12×128,
// 1280 tokens; the MLP's 6144). pdiff runs with 1 GEMM thread (as each of 2 ranks on 2 cores) and, for
// the largest, with every core (a single-rank run); Eigen's product is single-threaded.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <array>
#include <string>
#include <thread>

#include "pdiff/backend/cpu/bf16_weights.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/core/philox.hpp"

using namespace pdiff;

namespace {
Tensor<float> random(Shape s, std::uint64_t seed) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  return t;
}

void set_flops(benchmark::State& st, double m, double n, double k) {
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

// Linear-layer shape: y (M, N) = x (M, K) · Wᵀ, W (N, K).
// range(3): GEMM threads (0: every core)
void BM_pdiff_gemm(benchmark::State& st) {
  std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const int threads = st.range(3) > 0 ? int(st.range(3)) : int(std::thread::hardware_concurrency());
  auto x = random({m, k}, 1), w = random({n, k}, 2);
  Tensor<float> y({m, n});
  const int before = cpu_gemm_threads();
  set_cpu_gemm_threads(threads);
  for (auto _ : st) {
    gemm(x, w, y, {.trans_b = true});
    benchmark::DoNotOptimize(y.data());
  }
  set_cpu_gemm_threads(before);
  set_flops(st, double(m), double(n), double(k));
  st.SetLabel(std::string(cpu_gemm_is_openblas ? "openblas, " + std::to_string(threads) + " thread(s)" : "eigen, 1 thread"));
}

// The same with the weight kept bf16 in memory (a bf16 checkpoint on the CPU), widened per panel.
void BM_pdiff_gemm_bf16_weight(benchmark::State& st) {
  std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = random({m, k}, 1), w = random({n, k}, 2);
  for (std::int64_t i = 0; i < w.numel(); ++i) w(i) = float(bf16(w(i)));
  const auto w16 = convert<bf16>(w);
  Tensor<float> y({m, n});
  const int before = cpu_gemm_threads();
  set_cpu_gemm_threads(1);
  for (auto _ : st) {
    gemm_bf16_weight(x, w16, y);
    benchmark::DoNotOptimize(y.data());
  }
  set_cpu_gemm_threads(before);
  set_flops(st, double(m), double(n), double(k));
}

#if defined(PDIFF_WITH_OPENBLAS)
void BM_openblas_gemm(benchmark::State& st) {
  std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = random({m, k}, 1), w = random({n, k}, 2);
  Tensor<float> y({m, n});
  const int before = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(k), 1.0f, x.data(),
                blasint(k), w.data(), blasint(k), 0.0f, y.data(), blasint(n));
    benchmark::DoNotOptimize(y.data());
  }
  openblas_set_num_threads(before);
  set_flops(st, double(m), double(n), double(k));
}
#endif

void BM_eigen_gemm(benchmark::State& st) {
  std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = random({m, k}, 1), w = random({n, k}, 2);
  Tensor<float> y({m, n});
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RM> X(x.data(), m, k), W(w.data(), n, k);
  Eigen::Map<RM> Y(y.data(), m, n);
  for (auto _ : st) {
    Y.noalias() = X * W.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(st, double(m), double(n), double(k));
}

// Batched attention-score shape: (B, S, D) · (B, S, D)ᵀ.
void BM_pdiff_gemm_batched(benchmark::State& st) {
  std::int64_t b = st.range(0), s = st.range(1), d = st.range(2);
  auto q = random({b, s, d}, 3), kk = random({b, s, d}, 4);
  Tensor<float> o({b, s, s});
  for (auto _ : st) {
    gemm(q, kk, o, {.trans_b = true});
    benchmark::DoNotOptimize(o.data());
  }
  set_flops(st, double(b * s), double(s), double(d));
}

void BM_eigen_gemm_batched(benchmark::State& st) {
  std::int64_t b = st.range(0), s = st.range(1), d = st.range(2);
  auto q = random({b, s, d}, 3), kk = random({b, s, d}, 4);
  Tensor<float> o({b, s, s});
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (auto _ : st) {
    for (std::int64_t i = 0; i < b; ++i) {
      Eigen::Map<const RM> Q(q.data() + i * s * d, s, d), K(kk.data() + i * s * d, s, d);
      Eigen::Map<RM> O(o.data() + i * s * s, s, s);
      O.noalias() = Q * K.transpose();
    }
    benchmark::DoNotOptimize(o.data());
  }
  set_flops(st, double(b * s), double(s), double(d));
}

constexpr std::array<std::array<long, 3>, 5> kLinear = {
    {{64, 512, 512}, {256, 1024, 1024}, {512, 2048, 1024}, {1280, 1536, 1536}, {1280, 6144, 1536}}};
void linear_sizes(benchmark::internal::Benchmark* b) {
  for (auto [m, n, k] : kLinear) b->Args({m, n, k});
}
void linear_sizes_threads(benchmark::internal::Benchmark* b) {
  for (auto [m, n, k] : kLinear) b->Args({m, n, k, 1});
  b->Args({1280, 6144, 1536, 0});
}
}  // namespace

BENCHMARK(BM_pdiff_gemm)->Apply(linear_sizes_threads)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pdiff_gemm_bf16_weight)->Apply(linear_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_eigen_gemm)->Apply(linear_sizes)->Unit(benchmark::kMicrosecond);
#if defined(PDIFF_WITH_OPENBLAS)
BENCHMARK(BM_openblas_gemm)->Apply(linear_sizes)->Unit(benchmark::kMicrosecond);
#endif
BENCHMARK(BM_pdiff_gemm_batched)->Args({8, 256, 64})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_eigen_gemm_batched)->Args({8, 256, 64})->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
