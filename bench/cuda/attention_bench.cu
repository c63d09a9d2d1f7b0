// CUDA layer kernels on one device: flash attention in TFLOP/s (B=1, H ∈ {24, 48}, D=128, S ∈ {4096,
// 8192, 16384}, causal and not: FLOPs = 4·B·H·Sq·Sk·D, halved for causal; bench/cuda/sdpa_torch.py
// times PyTorch's SDPA on the same shapes in the same gpu-check run) and the norms in GB/s (bytes read
// + written once). Timed with CUDA events (manual time); without a device every case is skipped.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <vector>

#include "pdiff/backend/cuda/kernels/flash_attention.cuh"
#include "pdiff/backend/cuda/kernels/layer_norm.cuh"
#include "pdiff/backend/cuda/kernels/rms_norm.cuh"
#include "pdiff/backend/cuda/kernels/rms_norm_rope.cuh"
#include "pdiff/backend/cuda/kernels/rope.cuh"
#include "pdiff/backend/cuda/ops.hpp"

using namespace pdiff;

namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// Device buffer of n bf16 filled with small values (a fixed pattern: timings do not depend on it).
struct DevBf16 {
  bf16* p = nullptr;
  explicit DevBf16(std::size_t n) {
    PDIFF_CHECK(cudaMalloc(&p, n * sizeof(bf16)) == cudaSuccess, "bench: cudaMalloc of ", n, " bf16 failed");
    std::vector<bf16> h(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = bf16(float(int(i % 17) - 8) * 0.0625f);
    cudaMemcpy(p, h.data(), n * sizeof(bf16), cudaMemcpyHostToDevice);
  }
  DevBf16(const DevBf16&) = delete;
  DevBf16& operator=(const DevBf16&) = delete;
  ~DevBf16() { cudaFree(p); }
};

// Runs f once per iteration between two events and reports that time.
template <class F>
void time_loop(benchmark::State& st, F&& f) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f();  // warm-up (and shared-memory attribute)
  cudaDeviceSynchronize();
  for (auto _ : st) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, a, b);
    st.SetIterationTime(double(ms) * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
}

void BM_flash_attention(benchmark::State& st) {
  if (!have_device()) return st.SkipWithError("no CUDA device");
  const std::int64_t B = 1, S = st.range(0);
  const int H = int(st.range(1)), D = 128;
  const bool causal = st.range(2) != 0;
  const std::size_t n = std::size_t(B * S * H * D);
  DevBf16 q(n), k(n), v(n), o(n);
  float* lse = nullptr;
  cudaMalloc(&lse, std::size_t(B * H * S) * sizeof(float));
  cuda::AttnParams p;
  p.causal = causal;
  time_loop(st, [&] { cuda::launch_flash_attention(q.p, k.p, v.p, o.p, lse, B, S, S, H, H, D, p, nullptr); });
  cudaFree(lse);
  const double flops = 4.0 * double(B) * H * double(S) * double(S) * D * (causal ? 0.5 : 1.0);
  st.counters["TFLOP/s"] =
      benchmark::Counter(flops * 1e-12 * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_flash_attention)
    ->ArgNames({"S", "H", "causal"})
    ->ArgsProduct({{4096, 8192, 16384}, {24, 48}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// cuDNN's fused attention (attention_cudnn) on the same shapes and data, with the LSE too; skipped where
// pdiff was built without cuDNN or cuDNN refuses the case (the reason is the skip message).
void BM_cudnn_attention(benchmark::State& st) {
  if (!have_device()) return st.SkipWithError("no CUDA device");
  static std::string why;
  if (!cudnn_attention_built()) return st.SkipWithError("pdiff was built without cuDNN");
  const std::int64_t B = 1, S = st.range(0);
  const int H = int(st.range(1)), D = 128;
  const bool causal = st.range(2) != 0;
  const Shape shape{B, S, H, D};
  const std::size_t n = std::size_t(B * S * H * D);
  DevBf16 q(n), k(n), v(n);
  // the same pattern as the flash case, in tensors (one copy of each, timing excludes it)
  Tensor<bf16, OnCuda> tq(shape), tk(shape), tv(shape), o(shape);
  cudaMemcpy(tq.data(), q.p, n * sizeof(bf16), cudaMemcpyDeviceToDevice);
  cudaMemcpy(tk.data(), k.p, n * sizeof(bf16), cudaMemcpyDeviceToDevice);
  cudaMemcpy(tv.data(), v.p, n * sizeof(bf16), cudaMemcpyDeviceToDevice);
  Tensor<float, OnCuda> lse({B, H, S});
  const float scale = 1.0f / std::sqrt(float(D));
  if (!attention_cudnn(tq, tk, tv, o, lse.data(), scale, causal, &why)) return st.SkipWithError(why.c_str());
  time_loop(st, [&] { attention_cudnn(tq, tk, tv, o, lse.data(), scale, causal); });
  const double flops = 4.0 * double(B) * H * double(S) * double(S) * D * (causal ? 0.5 : 1.0);
  st.counters["TFLOP/s"] =
      benchmark::Counter(flops * 1e-12 * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_cudnn_attention)
    ->ArgNames({"S", "H", "causal"})
    ->ArgsProduct({{4096, 8192, 16384}, {24, 48}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// rows × D: the q/k norm of FLUX.2 (S·H rows of 128) and a hidden-size norm (S rows of 3072).
void BM_rms_norm(benchmark::State& st) {
  if (!have_device()) return st.SkipWithError("no CUDA device");
  const std::int64_t rows = st.range(0);
  const int d = int(st.range(1));
  DevBf16 x{std::size_t(rows * d)}, w{std::size_t(d)}, o{std::size_t(rows * d)};
  time_loop(st, [&] { cuda::launch_rms_norm(x.p, w.p, o.p, rows, d, 1e-6f, nullptr); });
  st.counters["GB/s"] = benchmark::Counter(2.0 * double(rows) * d * 2 * 1e-9 * double(st.iterations()),
                                           benchmark::Counter::kIsRate);
}
BENCHMARK(BM_rms_norm)->Args({4096 * 24, 128})->Args({4096, 3072})->Args({16384, 3072})->UseManualTime();

// FLUX.2-dev's q (or k) of one block: tokens × 48 heads × 128, its per-head norm and interleaved RoPE — in one
// kernel (fused:1, rms_norm_rope.cuh) or as rms_norm then rope (fused:0). GB/s counts x read and written once, so
// the two-kernel case's figure is half its real traffic: the ratio of the two is the time saved.
void BM_rms_norm_rope(benchmark::State& st) {
  if (!have_device()) return st.SkipWithError("no CUDA device");
  const std::int64_t S = st.range(0), H = 48;
  const int d = 128;
  const bool fused = st.range(1) != 0;
  DevBf16 x{std::size_t(S * H * d)}, w{std::size_t(d)}, o{std::size_t(S * H * d)};
  float *cos = nullptr, *sin = nullptr;
  PDIFF_CHECK(cudaMalloc(&cos, std::size_t(S * d) * sizeof(float)) == cudaSuccess &&
                  cudaMalloc(&sin, std::size_t(S * d) * sizeof(float)) == cudaSuccess,
              "bench: cudaMalloc of the RoPE table failed");
  cudaMemset(cos, 0, std::size_t(S * d) * sizeof(float));
  cudaMemset(sin, 0, std::size_t(S * d) * sizeof(float));
  bool took = true;  // the fused kernel takes the case (else this would time nothing)
  time_loop(st, [&] {
    if (fused) {
      took = cuda::launch_rms_norm_rope(x.p, w.p, o.p, cos, sin, 1, S, H, d, false, 1e-6f,
                                        cuda::RopePairs::interleaved, nullptr);
    } else {
      cuda::launch_rms_norm(x.p, w.p, o.p, S * H, d, 1e-6f, nullptr);
      cuda::launch_rope(o.p, cos, sin, 1, S, H, d, false, cuda::RopePairs::interleaved, nullptr);
    }
  });
  cudaFree(cos);
  cudaFree(sin);
  if (!took) return st.SkipWithError("rms_norm_rope: the fused kernel refused the case");
  st.counters["GB/s"] = benchmark::Counter(2.0 * double(S * H) * d * 2 * 1e-9 * double(st.iterations()),
                                           benchmark::Counter::kIsRate);
}
BENCHMARK(BM_rms_norm_rope)->ArgNames({"S", "fused"})->ArgsProduct({{4608}, {1, 0}})->UseManualTime();

void BM_layer_norm_modulate(benchmark::State& st) {
  if (!have_device()) return st.SkipWithError("no CUDA device");
  const std::int64_t B = 1, S = st.range(0);
  const int d = int(st.range(1));
  DevBf16 x{std::size_t(B * S * d)}, shift{std::size_t(B * d)}, scale{std::size_t(B * d)}, o{std::size_t(B * S * d)};
  time_loop(st, [&] {
    cuda::launch_layer_norm_modulate<bf16>(x.p, nullptr, nullptr, shift.p, scale.p, o.p, B, S, d, 1e-6f, nullptr);
  });
  st.counters["GB/s"] = benchmark::Counter(2.0 * double(B * S) * d * 2 * 1e-9 * double(st.iterations()),
                                           benchmark::Counter::kIsRate);
}
BENCHMARK(BM_layer_norm_modulate)->Args({4096, 3072})->Args({16384, 3072})->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
