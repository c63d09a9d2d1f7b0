// Philox4x32-10: Random123 known answers, stream properties, and the deterministic Box–Muller.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "pdiff/core/philox.hpp"

using namespace pdiff;

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors") {
  auto r = philox4x32_10(Philox4{{0, 0, 0, 0}}, 0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
  r = philox4x32_10(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  CHECK(r.v[0] == 0x408f276du);
  CHECK(r.v[1] == 0x41c83b0eu);
  CHECK(r.v[2] == 0xa20bc7c6u);
  CHECK(r.v[3] == 0x6d5451fdu);
  r = philox4x32_10(Philox4{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u);
  CHECK(r.v[0] == 0xd16cfe09u);
  CHECK(r.v[1] == 0x94fdccebu);
  CHECK(r.v[2] == 0x5001e420u);
  CHECK(r.v[3] == 0x24126ea1u);
}

TEST_CASE("noise depends only on (seed, index): chunked draws equal one draw") {
  std::vector<float> whole(1003), parts(1003);
  Philox g{42, 7};
  g.fill_normal(whole);
  CHECK(g.offset == 7 + 1003);
  Philox h{42, 7};
  // as 3 ranks would draw their shards
  h.fill_normal(std::span(parts).subspan(0, 333));
  h.fill_normal(std::span(parts).subspan(333, 500));
  h.fill_normal(std::span(parts).subspan(833));
  CHECK(std::memcmp(whole.data(), parts.data(), whole.size() * 4) == 0);
  for (std::size_t i = 0; i < whole.size(); i += 97) CHECK(whole[i] == philox_normal(42, 7 + i));
  CHECK(philox_normal(43, 7) != whole[0]);
}

TEST_CASE("normal noise has mean 0 and variance 1; uniform noise fills [0, 1)") {
  const int n = 200000;
  std::vector<float> z(n), u(n);
  Philox g{1234, 0};
  g.fill_normal(z);
  g.fill_uniform(u);
  double s = 0, s2 = 0, s4 = 0;
  for (float v : z) {
    s += v;
    s2 += double(v) * v;
    s4 += double(v) * v * v * v;
  }
  double mean = s / n, var = s2 / n - mean * mean;
  CHECK(std::fabs(mean) < 0.01);
  CHECK(std::fabs(var - 1.0) < 0.01);
  CHECK(std::fabs(s4 / n - 3.0) < 0.06);  // kurtosis of a normal
  double us = 0;
  for (float v : u) {
    CHECK(v >= 0.0f);
    CHECK(v < 1.0f);
    us += v;
  }
  CHECK(std::fabs(us / n - 0.5) < 0.005);
}

TEST_CASE("the deterministic log and sincos are accurate") {
  for (float u = 1e-7f; u <= 1.0f; u *= 1.37f) {
    CAPTURE(u);
    CHECK(detail::det_log(u) == doctest::Approx(std::log(double(u))).epsilon(3e-7));
  }
  CHECK(detail::det_log(1.0f) == 0.0f);
  for (int k = 0; k < 1000; ++k) {
    float t = float(k) / 1000.0f;
    float s, c;
    detail::det_sincos_turns(t, s, c);
    CHECK(std::fabs(s - std::sin(6.283185307179586 * t)) < 5e-7);
    CHECK(std::fabs(c - std::cos(6.283185307179586 * t)) < 5e-7);
  }
}
