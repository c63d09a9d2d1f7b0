// CPU ops against straightforward references: norms, activations, RoPE tables and application,
// timestep features, shape ops, and their errors.
#include "harness.hpp"
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "pdiff/backend/cpu/vexp.hpp"

using namespace pdiff;
using namespace pdiff::test;

TEST_CASE("rms_norm, layer_norm and group_norm equal their formulas") {
  auto x = random({3, 5, 16}, 1), w = random({16}, 2), b = random({16}, 3);
  auto r = rms_norm(x, w, 1e-6f), l = layer_norm(x, w, b, 1e-5f), l0 = layer_norm(x, 1e-6f);
  for (std::int64_t row = 0; row < 15; ++row) {
    double ss = 0, mean = 0, var = 0;
    for (int i = 0; i < 16; ++i) ss += double(x(row * 16 + i)) * x(row * 16 + i), mean += x(row * 16 + i);
    mean /= 16;
    for (int i = 0; i < 16; ++i) var += (x(row * 16 + i) - mean) * (x(row * 16 + i) - mean);
    var /= 16;
    for (int i = 0; i < 16; ++i) {
      double xi = x(row * 16 + i);
      CHECK(r(row * 16 + i) == doctest::Approx(xi / std::sqrt(ss / 16 + 1e-6) * w(i)).epsilon(1e-6));
      CHECK(l(row * 16 + i) == doctest::Approx((xi - mean) / std::sqrt(var + 1e-5) * w(i) + b(i)).epsilon(1e-5));
      CHECK(l0(row * 16 + i) == doctest::Approx((xi - mean) / std::sqrt(var + 1e-6)).epsilon(1e-5));
    }
  }
  auto img = random({2, 8, 3, 3}, 4), gw = random({8}, 5), gb = random({8}, 6);
  auto g = group_norm(img, 4, gw, gb, 1e-6f);
  // group 1 of batch 1 = channels 2, 3
  double mean = 0, var = 0;
  for (int c = 2; c < 4; ++c)
    for (int i = 0; i < 9; ++i) mean += img((8 + c) * 9 + i);
  mean /= 18;
  for (int c = 2; c < 4; ++c)
    for (int i = 0; i < 9; ++i) var += std::pow(img((8 + c) * 9 + i) - mean, 2);
  var /= 18;
  CHECK(g((8 + 3) * 9 + 4) == doctest::Approx((img((8 + 3) * 9 + 4) - mean) / std::sqrt(var + 1e-6) * gw(3) + gb(3)).epsilon(1e-5));
  CHECK_THROWS_WITH_AS(group_norm(img, 3, gw, gb, 1e-6f), doctest::Contains("channels (8) must be divisible by groups (3)"), Error);
  CHECK_THROWS_WITH_AS(rms_norm(x, random({8}, 7), 1e-6f), doctest::Contains("weight has 8 elements"), Error);
}

TEST_CASE("activations, swiglu, modulate and gated residual") {
  auto x = random({2, 3, 8}, 8);
  auto s = silu(x), g = gelu_tanh(x), sw = swiglu(x);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    double v = x(i);
    CHECK(s(i) == doctest::Approx(v / (1 + std::exp(-v))).epsilon(1e-6));
    CHECK(g(i) == doctest::Approx(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))).epsilon(1e-5));
  }
  CHECK(sw.shape() == Shape{2, 3, 4});
  CHECK(sw(5) == doctest::Approx(silu(x(9)) * x(13)).epsilon(1e-6));  // row 1, i = 1
  auto shift = random({2, 8}, 9), scale = random({2, 8}, 10), gate = random({2, 8}, 11);
  auto m = modulate(x, shift, scale);
  CHECK(m(1 * 24 + 2 * 8 + 5) == doctest::Approx((1 + scale(8 + 5)) * x(1 * 24 + 2 * 8 + 5) + shift(8 + 5)));
  auto y = x.clone();
  gated_add(y, gate, m);
  CHECK(y(7) == doctest::Approx(x(7) + gate(7) * m(7)));
}

TEST_CASE("RoPE: tables and both rotation conventions") {
  std::vector<std::int64_t> pos = {0, 1, 5, 100};
  auto t = rope_table_1d(pos, 8, 10000.0);
  // position 5, frequency index 1: angle 5 · 10000^(−2/8)
  CHECK(t.cos(2 * 8 + 1) == doctest::Approx(std::cos(5.0 * std::pow(10000.0, -0.25))).epsilon(1e-6));
  CHECK(t.sin(2 * 8 + 5) == doctest::Approx(std::sin(5.0 * std::pow(10000.0, -0.25))).epsilon(1e-6));
  auto x = random({1, 4, 2, 8}, 12);
  auto h = x.clone();
  apply_rope_half(h, t);
  // rotate_half: out[i] = x[i]·cos − x[i+4]·sin for i < 4
  const std::int64_t base = (2 * 2 + 1) * 8;  // s = 2, head 1
  CHECK(h(base + 1) == doctest::Approx(x(base + 1) * t.cos(17) - x(base + 5) * t.sin(17)));
  CHECK(h(base + 5) == doctest::Approx(x(base + 5) * t.cos(21) + x(base + 1) * t.sin(21)));

  // FLUX.2-style 4 axes of 2 dims each on ids (S, 4), interleaved pairs
  Tensor<float> ids({2, 4});
  for (int i = 0; i < 8; ++i) ids(i) = float(i % 4 + i / 4);
  int axes[] = {2, 2, 2, 2};
  auto ft = rope_table_axes(ids, axes, 2000.0);
  CHECK(ft.cos(1 * 8 + 2 * 2) == doctest::Approx(std::cos(3.0)).epsilon(1e-6));  // token 1, axis 2: id 3, freq 1
  auto xi = random({1, 2, 1, 8}, 13);
  auto r = xi.clone();
  apply_rope_interleaved(r, ft);
  CHECK(r(8 + 4) == doctest::Approx(xi(8 + 4) * std::cos(3.0) - xi(8 + 5) * std::sin(3.0)).epsilon(1e-5));
  CHECK(r(8 + 5) == doctest::Approx(xi(8 + 5) * std::cos(3.0) + xi(8 + 4) * std::sin(3.0)).epsilon(1e-5));
  CHECK_THROWS_WITH_AS(rope_table_1d(pos, 7, 10000.0), doctest::Contains("head dim (7) must be even"), Error);
  CHECK_THROWS_WITH_AS(rope_table_1d(pos, 8, 0.0), doctest::Contains("rope_theta (0) must be positive"), Error);
}

TEST_CASE("timestep features follow diffusers' get_timestep_embedding") {
  float ts[] = {0.0f, 250.0f, 999.0f};
  auto f = timestep_features(ts, 8, true, 0.0f);
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 4; ++i) {
      double freq = std::exp(-std::log(10000.0) * i / 4.0);
      CHECK(f(b * 8 + i) == doctest::Approx(std::cos(ts[b] * freq)).epsilon(1e-4));
      CHECK(f(b * 8 + 4 + i) == doctest::Approx(std::sin(ts[b] * freq)).epsilon(1e-4));
    }
}

TEST_CASE("narrow and cat are inverse") {
  auto x = random({2, 6, 3}, 14);
  auto a = narrow(x, 1, 0, 2), b = narrow(x, 1, 2, 4);
  CHECK(rel_err(cat(a, b, 1), x) == 0.0);
  CHECK_THROWS_WITH_AS(narrow(x, 1, 4, 3), doctest::Contains("out of range for dimension 1"), Error);
  // narrow_assign writes parts back in place: the same tensor as cat, bit for bit
  Tensor<float> packed({2, 6, 3});
  narrow_assign(packed, 1, 2, b);
  narrow_assign(packed, 1, 0, a);
  CHECK(rel_err(packed, x) == 0.0);
  auto c = narrow(x, -1, 1, 2);
  Tensor<float> p2 = Tensor<float>::zeros({2, 6, 3});
  narrow_assign(p2, -1, 1, c);
  CHECK(p2(0) == 0.0f);
  CHECK(p2(1) == x(1));
  CHECK(p2(2) == x(2));
  CHECK_THROWS_WITH_AS(narrow_assign(packed, 1, 3, b), doctest::Contains("narrow_assign: [3, 7) out of range"), Error);
  CHECK_THROWS_WITH_AS(narrow_assign(packed, 1, 0, random({2, 2, 4}, 15)), doctest::Contains("differ outside dimension 1"),
                       Error);
}

TEST_CASE("swiglu_into writes swiglu into columns of a packed buffer; rms_norm_rope_* equal their formulas") {
  auto x = random({2, 3, 8}, 16), att = random({2, 3, 5}, 17);
  Tensor<float> packed({2, 3, 9});
  narrow_assign(packed, -1, 0, att);
  swiglu_into(x, packed, 5);
  CHECK(rel_err(packed, cat(att, swiglu(x), -1)) == 0.0);
  CHECK_THROWS_WITH_AS(swiglu_into(x, packed, 6), doctest::Contains("does not fit columns [6, 10)"), Error);
  Tensor<float> wrong_rows({2, 2, 9});
  CHECK_THROWS_WITH_AS(swiglu_into(x, wrong_rows, 0), doctest::Contains("swiglu_into"), Error);

  // rms_norm_rope_* against the formulas in double: a random table (the halves of a rotate-half row differ)
  const std::int64_t S = 3, H = 4, D = 8;
  RopeTable<OnCpu> t{random({S, D}, 21), random({S, D}, 22)};
  const auto q = random({2, S, H, D}, 18), w = random({D}, 19);
  for (const bool weighted : {true, false}) {
    CAPTURE(weighted);
    const Tensor<float> wt = weighted ? w : Tensor<float>{};
    const auto got_h = rms_norm_rope_half(q, wt, 1e-6f, t), got_i = rms_norm_rope_interleaved(q, wt, 1e-6f, t);
    for (const std::int64_t row : {std::int64_t(0), std::int64_t(1 * S * H + 2 * H + 3)}) {  // (b, s, h) = (0,0,0), (1,2,3)
      const std::int64_t s = (row / H) % S;
      double ss = 0;
      for (std::int64_t i = 0; i < D; ++i) ss += double(q(row * D + i)) * q(row * D + i);
      auto nq = [&](std::int64_t i) { return q(row * D + i) / std::sqrt(ss / D + 1e-6) * (weighted ? w(i) : 1.0); };
      auto c = [&](std::int64_t i) { return double(t.cos(s * D + i)); };
      auto sn = [&](std::int64_t i) { return double(t.sin(s * D + i)); };
      for (std::int64_t i = 0; i < D / 2; ++i) {
        CHECK(got_h(row * D + i) == doctest::Approx(nq(i) * c(i) - nq(i + D / 2) * sn(i)).epsilon(1e-5));
        CHECK(got_h(row * D + i + D / 2) ==
              doctest::Approx(nq(i + D / 2) * c(i + D / 2) + nq(i) * sn(i + D / 2)).epsilon(1e-5));
        CHECK(got_i(row * D + 2 * i) == doctest::Approx(nq(2 * i) * c(2 * i) - nq(2 * i + 1) * sn(2 * i)).epsilon(1e-5));
        CHECK(got_i(row * D + 2 * i + 1) ==
              doctest::Approx(nq(2 * i + 1) * c(2 * i + 1) + nq(2 * i) * sn(2 * i + 1)).epsilon(1e-5));
      }
    }
  }
  CHECK_THROWS_WITH_AS(rms_norm_rope_half(random({2, 4, 4, 8}, 20), w, 1e-6f, t),
                       doctest::Contains("rms_norm_rope_half: table(3, 8) must be (S, D)"), Error);
  CHECK_THROWS_WITH_AS(rms_norm_rope_interleaved(q, random({4}, 23), 1e-6f, t),
                       doctest::Contains("rms_norm_rope_interleaved: weight has 4 elements"), Error);
  RopeTable<OnCpu> odd{random({S, 7}, 24), random({S, 7}, 25)};
  CHECK_THROWS_WITH_AS(rms_norm_rope_interleaved(random({1, S, 2, 7}, 26), Tensor<float>{}, 1e-6f, odd),
                       doctest::Contains("rms_norm_rope_interleaved: head dim (7) must be even"), Error);
  CHECK_THROWS_WITH_AS(swiglu_into(random({2, 0}, 27), packed, 0), doctest::Contains("must be even and positive"), Error);
}

// softmax and SiLU take their exponentials from detail::vexp (vectorisable): within 2 ulp of std::exp
// over the whole normal range, 0 / inf / NaN at the edges, subnormal results close in absolute terms.
TEST_CASE("vexp equals std::exp within 2 ulp, and its edges") {
  int worst_ulp = 0;
  for (float x = -87.0f; x <= 88.7f; x += 0.000731f) {
    const float want = std::exp(x), got = detail::vexp(x);
    const int ulp = std::abs(std::bit_cast<std::int32_t>(got) - std::bit_cast<std::int32_t>(want));
    worst_ulp = std::max(worst_ulp, ulp);
  }
  CHECK(worst_ulp <= 2);
  for (float x : {-0.0f, 0.0f, 1e-30f, -1e-30f}) CHECK(detail::vexp(x) == 1.0f);
  for (float x : {-103.0f, -95.5f, -88.0f}) CHECK(std::abs(detail::vexp(x) - std::exp(x)) <= 2e-45f + 1e-6f * std::exp(x));
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(detail::vexp(-inf) == 0.0f);
  CHECK(detail::vexp(-105.0f) == 0.0f);
  CHECK(detail::vexp(inf) == inf);
  CHECK(detail::vexp(88.73f) == inf);
  CHECK(std::isnan(detail::vexp(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isfinite(detail::vexp(88.72f)));
}
