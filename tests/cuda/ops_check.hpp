// Shared helpers of the CUDA op tests (host side): random inputs, bf16 rounding of the inputs the CPU
// op sees, CPU tensors from vectors, and NMSE as ggml's test-backend-ops measures it:
// Σ(out − ref)² / Σ ref².
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ops_device.hpp"
#include "pdiff/backend/cpu/norm.hpp"

namespace pdiff::test {

inline std::vector<float> randn(std::size_t n, std::uint32_t seed, float scale = 1.0f, float mean = 0.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// The values a bf16 kernel actually reads, so the CPU op gets the same inputs.
inline std::vector<float> as_dt(Dt dt, std::vector<float> v) {
  if (dt == Dt::bf16)
    for (auto& x : v) x = float(bf16(x));
  return v;
}

inline CpuTensor cpu(const std::vector<float>& v, Shape s) {
  CpuTensor t(s);
  for (std::size_t i = 0; i < v.size(); ++i) t(std::int64_t(i)) = v[i];
  return t;
}

inline double nmse(const std::vector<float>& out, const float* ref, std::size_t n) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0.0 ? num / den : num;
}
inline double nmse(const std::vector<float>& out, const CpuTensor& ref) {
  return nmse(out, ref.data(), std::size_t(ref.numel()));
}
inline double nmse(const std::vector<float>& out, const std::vector<float>& ref) {
  return nmse(out, ref.data(), ref.size());
}

// Thresholds: fp32 storage differs from the CPU only by fp32 summation order and rsqrtf/expf;
// bf16 storage adds one rounding of the output (≈ 2⁻⁹ relative, NMSE ≈ 1e-6).
inline double max_nmse(Dt dt) { return dt == Dt::f32 ? 1e-9 : 2e-5; }

inline const char* dt_name(Dt dt) { return dt == Dt::f32 ? "f32" : "bf16"; }

}  // namespace pdiff::test
