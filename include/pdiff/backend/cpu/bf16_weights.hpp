// pdiff/backend/cpu/bf16_weights.hpp — bf16 weights kept bf16 in CPU memory (half the bytes of fp32),
// widened to fp32 a panel at a time inside the GEMM.
//
// | call                                  | what                                                      |
// |---------------------------------------|-----------------------------------------------------------|
// | cpu_weights() / set_cpu_weights(m)    | auto (default, or PDIFF_CPU_WEIGHTS=auto): a weight whose every value is exactly a bf16 (a bf16 checkpoint) is kept bf16; f32 (PDIFF_CPU_WEIGHTS=f32): every weight fp32 |
// | keep_bf16(w)                          | whether w is kept bf16 under the current mode (its copy: convert<bf16>(w), exact) |
// | gemm_bf16_weight(a, w, c)             | c (m, n) = a (m, k) · wᵀ, w (n, k) bf16: panels of w's rows widened into a per-thread scratch (≤ 64 MiB: panels as wide as OpenBLAS blocks N itself, so A is not packed more often), one sgemm each into c's columns |
// Widening bf16 → fp32 is exact, so the results equal those of the fp32 weight: the same sgemm on the
// same values, bit for bit at GEMM sizes (a one-row call may differ in the last bit: OpenBLAS picks its
// GEMV kernel by size); tests/models/flux2_cpu_bf16_test.cpp. The cost is the widening: k·n conversions per call
// against 2·m·k·n flops, < 2% at m ≥ 256 tokens. A process-wide setting (like PDIFF_CPU_THREADS): it
// applies to weights loaded after it is set.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pdiff/backend/cpu/blas.hpp"
#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

enum class CpuWeights : int { automatic, f32 };

namespace detail {
inline std::atomic<int>& cpu_weights_mode() {
  static std::atomic<int> m{[] {
    const char* e = std::getenv("PDIFF_CPU_WEIGHTS");
    if (!e || std::string(e) == "auto" || std::string(e).empty()) return int(CpuWeights::automatic);
    if (std::string(e) == "f32") return int(CpuWeights::f32);
    throw Error(detail::cat("PDIFF_CPU_WEIGHTS='", e, "': use auto (bf16 checkpoints stay bf16) or f32"));
  }()};
  return m;
}
}  // namespace detail

inline CpuWeights cpu_weights() { return CpuWeights(detail::cpu_weights_mode().load()); }
inline void set_cpu_weights(CpuWeights m) { detail::cpu_weights_mode().store(int(m)); }

// Every value exactly representable in bf16 (the low 16 bits of each float are zero).
inline bool bf16_exact(const Tensor<float, OnCpu>& w) {
  const float* p = w.data();
  std::uint32_t any = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    std::uint32_t u;
    std::memcpy(&u, p + i, 4);
    any |= u & 0xffffu;
  }
  return any == 0;
}

inline bool keep_bf16(const Tensor<float, OnCpu>& w) {
  return cpu_weights() == CpuWeights::automatic && w.rank() == 2 && w.numel() > 0 && bf16_exact(w);
}

// n values of bf16 rows widened to fp32 (exact).
inline void widen_bf16(const bf16* src, float* dst, std::int64_t n) {
  const auto* s = reinterpret_cast<const std::uint16_t*>(src);
  auto* d = reinterpret_cast<std::uint32_t*>(dst);
  for (std::int64_t i = 0; i < n; ++i) d[i] = std::uint32_t(s[i]) << 16;
}

inline void gemm_bf16_weight(const Tensor<float, OnCpu>& a, const Tensor<bf16, OnCpu>& w, Tensor<float, OnCpu>& c) {
  PDIFF_CHECK(a.rank() == 2 && w.rank() == 2 && c.rank() == 2 && a.size(1) == w.size(1) && c.size(0) == a.size(0) &&
                  c.size(1) == w.size(0),
              "gemm_bf16_weight: a", a.shape(), " · w", w.shape(), "ᵀ → c", c.shape(), " do not match");
  const std::int64_t m = a.size(0), k = a.size(1), n = w.size(0);
  const std::int64_t panel = std::clamp<std::int64_t>((std::int64_t(1) << 24) / std::max<std::int64_t>(k, 1), 256, std::max<std::int64_t>(n, 1));
  // a tensor, so the rank's memory figures (memory<OnCpu>::thread_peak_bytes) count it
  thread_local Tensor<float, OnCpu> scratch;
  if (scratch.numel() < std::min(panel, n) * k) scratch = Tensor<float, OnCpu>({std::min(panel, n) * k});
  for (std::int64_t r0 = 0; r0 < n; r0 += panel) {
    const std::int64_t rows = std::min(panel, n - r0);
    widen_bf16(w.data() + r0 * k, scratch.data(), rows * k);
    detail::sgemm_rm(false, true, m, rows, k, 1.0f, a.data(), k, scratch.data(), k, 0.0f, c.data() + r0, n);
  }
}

}  // namespace pdiff
