// CPU GEMM through pdiff's backend vs Eigen called directly, on the same buffers.
// The target: pdiff / Eigen time ratio ≤ 1/0.95 (throughput ratio ≥ 0.95). Both run in
// one process, interleaved per size, so machine noise hits them alike.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

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
void BM_pdiff_gemm(benchmark::State& st) {
  std::int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = random({m, k}, 1), w = random({n, k}, 2);
  Tensor<float> y({m, n});
  for (auto _ : st) {
    gemm(x, w, y, {.trans_b = true});
    benchmark::DoNotOptimize(y.data());
  }
  set_flops(st, double(m), double(n), double(k));
}

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

void linear_sizes(benchmark::internal::Benchmark* b) {
  for (auto [m, n, k] : {std::array<long, 3>{64, 512, 512}, {256, 1024, 1024}, {512, 2048, 1024}})
    b->Args({m, n, k});
}
}  // namespace

BENCHMARK(BM_pdiff_gemm)->Apply(linear_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_eigen_gemm)->Apply(linear_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_pdiff_gemm_batched)->Args({8, 256, 64})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_eigen_gemm_batched)->Args({8, 256, 64})->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
