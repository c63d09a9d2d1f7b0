// pdiff's CUDA gemm vs cuBLASLt called directly, bf16 in/out with fp32 accumulation, on linear-layer
// shapes of FLUX.2 (x: (M, K) with M = 4096 image + 512 text tokens, y = x · Wᵀ, W: (N, K)).
// Each iteration enqueues 10 GEMMs on one stream and waits (wall time: host overhead counts).
// BM_gemm_ratio interleaves both on the same buffers and reports ratio = pdiff / cuBLASLt
// throughput (target ≥ 0.95). Run: build/bench/cuda/bench_gemm_cuda --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <chrono>

#include "pdiff/backend/cuda/gemm.hpp"

using namespace pdiff;

namespace {
constexpr int kCalls = 10;

struct Problem {
  std::int64_t m, n, k;
  Tensor<bf16, OnCuda> x, w, y;
  Problem(std::int64_t m_, std::int64_t n_, std::int64_t k_)
      : m(m_), n(n_), k(k_), x(Tensor<bf16, OnCuda>::zeros({m_, k_})), w(Tensor<bf16, OnCuda>::zeros({n_, k_})),
        y({m_, n_}) {}
};

// cuBLASLt set up once, as a hand-written caller would: y (M, N) row-major = x · Wᵀ, i.e. column-major
// yᵀ (N, M) = W (op T on the (K, N) column-major view) · xᵀ.
struct Direct {
  cublasLtHandle_t h = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  void* ws = nullptr;
  std::size_t ws_bytes = 0;
  explicit Direct(const Problem& p) {
    detail::lt_check(cublasLtCreate(&h), "cublasLtCreate");
    detail::lt_check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn);
    cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, std::uint64_t(p.k), std::uint64_t(p.n), p.k);
    cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, std::uint64_t(p.k), std::uint64_t(p.m), p.k);
    cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, std::uint64_t(p.n), std::uint64_t(p.m), p.n);
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulPreferenceCreate(&pref);
    const std::uint64_t max_ws = detail::lt_max_workspace;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws);
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    detail::lt_check(cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, lc, pref, 1, &res, &found), "heuristic");
    cublasLtMatmulPreferenceDestroy(pref);
    PDIFF_CHECK(found > 0, "no cuBLASLt algorithm");
    algo = res.algo;
    ws_bytes = res.workspaceSize;
    if (ws_bytes) PDIFF_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
  }
  ~Direct() {
    cudaFree(ws);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(h);
  }
  void run(Problem& p, cudaStream_t s) {
    const float alpha = 1.0f, beta = 0.0f;
    detail::lt_check(cublasLtMatmul(h, desc, &alpha, p.w.data(), la, p.x.data(), lb, &beta, p.y.data(), lc, p.y.data(),
                                    lc, &algo, ws, ws_bytes, s),
                     "cublasLtMatmul");
  }
};

bool have_device(benchmark::State& st) {
  if (cuda_device_count() > 0) return true;
  st.SkipWithError("no CUDA device");
  return false;
}

template <class F>
double timed(F f) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) f();
  PDIFF_CUDA_CHECK(cudaStreamSynchronize(current_cuda_stream()));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void set_flops(benchmark::State& st, const Problem& p) {
  st.counters["TFLOP/s"] = benchmark::Counter(2.0 * double(p.m) * double(p.n) * double(p.k) * kCalls / 1e12,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void BM_gemm_pdiff(benchmark::State& st) {
  if (!have_device(st)) return;
  Problem p(st.range(0), st.range(1), st.range(2));
  gemm(p.x, p.w, p.y, {.trans_b = true});  // plan and heuristic outside the timing
  for (auto _ : st) st.SetIterationTime(timed([&] { gemm(p.x, p.w, p.y, {.trans_b = true}); }));
  set_flops(st, p);
}

void BM_gemm_cublaslt(benchmark::State& st) {
  if (!have_device(st)) return;
  Problem p(st.range(0), st.range(1), st.range(2));
  Direct d(p);
  const cudaStream_t s = current_cuda_stream();
  d.run(p, s);
  for (auto _ : st) st.SetIterationTime(timed([&] { d.run(p, s); }));
  set_flops(st, p);
}

void BM_gemm_ratio(benchmark::State& st) {
  if (!have_device(st)) return;
  Problem p(st.range(0), st.range(1), st.range(2));
  Direct d(p);
  const cudaStream_t s = current_cuda_stream();
  gemm(p.x, p.w, p.y, {.trans_b = true});
  d.run(p, s);
  double t_pdiff = 0, t_direct = 0;
  for (auto _ : st) {
    const double a = timed([&] { gemm(p.x, p.w, p.y, {.trans_b = true}); });
    const double b = timed([&] { d.run(p, s); });
    t_pdiff += a, t_direct += b;
    st.SetIterationTime(a + b);
  }
  const double flop = 2.0 * double(p.m) * double(p.n) * double(p.k) * kCalls * double(st.iterations());
  st.counters["pdiff_TFLOP/s"] = flop / t_pdiff / 1e12;
  st.counters["cublasLt_TFLOP/s"] = flop / t_direct / 1e12;
  st.counters["ratio"] = t_direct / t_pdiff;
}

void flux2_shapes(benchmark::internal::Benchmark* b) {
  const long m = 4096 + 512;
  for (auto [n, k] : {std::array<long, 2>{3072, 3072}, {6144, 6144}, {3 * 6144, 6144}, {6144, 3 * 6144}})
    b->Args({m, n, k});
}
}  // namespace

BENCHMARK(BM_gemm_pdiff)->Apply(flux2_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gemm_cublaslt)->Apply(flux2_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gemm_ratio)->Apply(flux2_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
