// pdiff/backend/cpu/vexp.hpp — detail::vexp(x): e^x in single precision written so that a loop calling
// it vectorises (no libm call, no branch: clamps and selects only). Used where exponentials dominate a
// CPU op: attention's softmax (S² per head) and SiLU.
//
// | x                        | result                                                     |
// |--------------------------|------------------------------------------------------------|
// | −104 ≤ x ≤ 88.7228       | e^x within 2 ulp of std::exp (normal results), subnormals rounded |
// | x < −104, −inf           | 0                                                          |
// | x > 88.7228, +inf        | +inf                                                       |
// | NaN                      | NaN                                                        |
// Each step is a select, not a branch: with GCC a loop over it vectorises under -fno-trapping-math
// (pdiff's own targets set it; ~4x std::exp per element on AVX2/AVX-512), and it is correct without.
// Method (Cephes expf): n = round(x·log2 e), r = x − n·ln 2 in two parts (Cody–Waite), e^r by a degree-7
// polynomial on |r| ≤ ln2/2, then · 2^n as two exact powers of two (so n from −150 to 128 needs no
// special case).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace pdiff::detail {

inline float vexp(float x) {
  constexpr float lo = -104.0f, hi = 88.72283905206835f;
  float xc = x < lo ? lo : x;  // NaN stays NaN here and comes out NaN
  xc = xc > hi ? hi : xc;
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const std::int32_t ni = x != x ? 0 : std::int32_t(n), h = ni >> 1;  // −150 ≤ ni ≤ 128: two normal powers
  const float s1 = std::bit_cast<float>(std::int32_t((h + 127) << 23));
  const float s2 = std::bit_cast<float>(std::int32_t((ni - h + 127) << 23));
  float y = er * s1 * s2;
  y = x < lo ? 0.0f : y;
  y = x > hi ? std::numeric_limits<float>::infinity() : y;
  return y;
}

}  // namespace pdiff::detail
