// pdiff/core/philox.hpp — counter-based Philox4x32-10 and the noise drawn from it.
//
// | function                          | result                                                     |
// |-----------------------------------|------------------------------------------------------------|
// | philox4x32_10(counter, key)       | 4 × uint32, the Random123 Philox4x32 with 10 rounds        |
// | philox_uniform(seed, i)           | element i of the uniform stream in [0, 1), 24-bit          |
// | philox_normal(seed, i)            | element i of the standard-normal stream (Box–Muller)       |
// | Philox{seed, offset}              | a generator object: fill(span) and advance                 |
//
// Element i of a stream depends only on (seed, i): counter = i / 4 (64-bit, low words), key = seed,
// lane = i % 4. So noise does not depend on how it is split over ranks, nor on the backend: the
// Box–Muller transform uses only IEEE-exact operations (+, −, ×, fmaf, correctly rounded ÷ and √)
// with explicit fmaf everywhere a multiply-add appears, which host and device evaluate
// identically; the CUDA kernel (backend/cuda/philox.cuh) calls these same functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "pdiff/core/dtype.hpp"
#include "pdiff/core/hd.hpp"

namespace pdiff {

struct Philox4 {
  std::uint32_t v[4];
};

namespace detail {
PDIFF_HD void mulhilo32(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  std::uint64_t p = std::uint64_t(a) * std::uint64_t(b);
  hi = std::uint32_t(p >> 32);
  lo = std::uint32_t(p);
}

PDIFF_HD float exact_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
PDIFF_HD float exact_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
PDIFF_HD float exact_sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

// ln(u) for u in (0, 1], |error| < 2 ulp, the same bits on host and device.
PDIFF_HD float det_log(float u) {
  std::uint32_t b = float_bits(u);
  int e = int((b >> 23) & 0xff) - 127;
  float m = bits_float((b & 0x7fffffu) | 0x3f800000u);  // m in [1, 2)
  if (m > 1.41421356f) {
    m = m * 0.5f;
    e += 1;
  }
  // log m = 2 atanh(r), r = (m − 1)/(m + 1), |r| ≤ 0.1716
  float r = exact_div(m - 1.0f, m + 1.0f);
  float r2 = r * r;
  float p = exact_fma(r2, 1.0f / 9.0f, 1.0f / 7.0f);
  p = exact_fma(r2, p, 1.0f / 5.0f);
  p = exact_fma(r2, p, 1.0f / 3.0f);
  p = exact_fma(r2, p, 1.0f);
  float lm = 2.0f * r * p;  // ×2 is exact
  const float ln2_hi = 0.693145752f, ln2_lo = 1.42860677e-06f;
  float fe = float(e);
  return exact_fma(fe, ln2_hi, exact_fma(fe, ln2_lo, lm));
}

// sin and cos of 2π·t for t in [0, 1).
PDIFF_HD void det_sincos_turns(float t, float& s, float& c) {
  float q = float(int(exact_fma(t, 4.0f, 0.5f)));  // nearest quarter turn (t ≥ 0)
  float f = exact_fma(q, -0.25f, t);               // exact: f in [−1/8, 1/8] turns
  float a = f * 6.28318530718f;                    // radians in [−π/4, π/4]
  float a2 = a * a;
  float sp = exact_fma(a2, 2.75573192e-06f, -1.98412698e-04f);
  sp = exact_fma(a2, sp, 8.33333333e-03f);
  sp = exact_fma(a2, sp, -1.66666667e-01f);
  float sa = exact_fma(a * a2, sp, a);
  float cp = exact_fma(a2, 2.48015873e-05f, -1.38888889e-03f);
  cp = exact_fma(a2, cp, 4.16666667e-02f);
  cp = exact_fma(a2, cp, -0.5f);
  float ca = exact_fma(a2, cp, 1.0f);
  switch (int(q) & 3) {
    case 0: s = sa; c = ca; break;
    case 1: s = ca; c = -sa; break;
    case 2: s = -sa; c = -ca; break;
    default: s = -ca; c = sa; break;
  }
}
}  // namespace detail

PDIFF_HD Philox4 philox4x32_10(Philox4 ctr, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    detail::mulhilo32(0xD2511F53u, ctr.v[0], hi0, lo0);
    detail::mulhilo32(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// The block of four raw words that holds element i of stream `seed`.
PDIFF_HD Philox4 philox_block(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t blk = i >> 2;
  return philox4x32_10(Philox4{{std::uint32_t(blk), std::uint32_t(blk >> 32), 0u, 0u}}, std::uint32_t(seed),
                       std::uint32_t(seed >> 32));
}

PDIFF_HD float philox_uniform(std::uint64_t seed, std::uint64_t i) {
  return float(philox_block(seed, i).v[i & 3] >> 8) * 5.9604644775390625e-08f;  // · 2^-24
}

// Standard normal: lanes (0,1) and (2,3) of a block are Box–Muller pairs (cos, sin).
PDIFF_HD float philox_normal(std::uint64_t seed, std::uint64_t i) {
  Philox4 b = philox_block(seed, i);
  unsigned pair = unsigned(i & 2);
  float u1 = float((b.v[pair] >> 8) + 1u) * 5.9604644775390625e-08f;  // (0, 1]
  float u2 = float(b.v[pair + 1] >> 8) * 5.9604644775390625e-08f;     // [0, 1)
  float r = detail::exact_sqrt(-2.0f * detail::det_log(u1));
  float s, c;
  detail::det_sincos_turns(u2, s, c);
  return (i & 1) ? r * s : r * c;
}

// A stream position: fill() draws the next elements and advances, so successive draws never
// reuse numbers; the same (seed, offset) gives the same numbers on every rank and backend.
struct Philox {
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;

  void fill_normal(std::span<float> out) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = philox_normal(seed, offset + k);
    offset += out.size();
  }
  void fill_uniform(std::span<float> out) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = philox_uniform(seed, offset + k);
    offset += out.size();
  }
  // Reserves n elements (e.g. drawn on a device) and returns the offset they start at.
  std::uint64_t advance(std::uint64_t n) {
    std::uint64_t at = offset;
    offset += n;
    return at;
  }
};

}  // namespace pdiff
