// bf16/f16 conversions: exhaustive round trips and rounding against a double-precision reference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "pdiff/core/dtype.hpp"

using namespace pdiff;

namespace {
// The f16 nearest to x (ties to even), computed by brute force over all finite f16 values.
std::uint16_t reference_f16(float x) {
  if (std::isnan(x)) return 0x7e00;
  double best_err = INFINITY;
  std::uint16_t best = 0;
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    double v = f16::to_float(std::uint16_t(h));
    double err = std::fabs(std::fabs(double(x)) - v);
    if (err < best_err || (err == best_err && (h & 1) == 0)) {
      best_err = err;
      best = std::uint16_t(h);
    }
  }
  // beyond the largest half (65504) by half an ulp (16) or more → inf
  if (std::fabs(double(x)) >= 65520.0) best = 0x7c00;
  return std::uint16_t(best | (std::signbit(x) ? 0x8000 : 0));
}
}  // namespace

TEST_CASE("f16: every half survives half → float → half") {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16::to_float(std::uint16_t(h));
    if (std::isnan(f)) continue;
    CHECK(f16::from_float(f) == h);
  }
}

TEST_CASE("f16: rounding to nearest even, subnormals and overflow") {
  const float samples[] = {0.0f, 1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65519.0f, 65520.0f,
                           1e-8f, 2.9802322e-08f, 5.9604645e-08f, 8.9406967e-08f, 6.1035156e-05f, 6.09e-05f,
                           3.14159f, -2.71828f, 1e6f, -1e-7f, 0.1f, 1234.567f};
  for (float x : samples) {
    CAPTURE(x);
    CHECK(f16::from_float(x) == reference_f16(x));
  }
  CHECK(std::isnan(float(f16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(float(f16(INFINITY)) == INFINITY);
}

TEST_CASE("bf16: exhaustive round trip and ties to even") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    float f = float(bf16::from_bits(std::uint16_t(b)));
    if (std::isnan(f)) continue;
    CHECK(bf16::from_float(f) == b);
  }
  // 1 + 2^-8 is exactly half-way between 1 and 1 + 2^-7: ties to the even mantissa (1.0)
  CHECK(float(bf16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(float(bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(float(bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(dtype_size(dtype_v<bf16>) == 2);
  CHECK(dtype_name(dtype_v<f16>) == "f16");
  static_assert(sizeof(bf16) == 2 && sizeof(f16) == 2);
}
