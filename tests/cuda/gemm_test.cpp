// gemm<OnCuda> (cuBLASLt) against the CPU gemm (Eigen, fp32): every transpose combination, batched,
// shared weights, alpha/beta, unaligned slices. fp32: NMSE < 1e-10; bf16 (inputs rounded to bf16 on
// both sides, output rounded once): NMSE < 1e-4, as ggml's test-backend-ops measures backends.
#include <doctest/doctest.h>

#include "pdiff/backend/cpu/convert.hpp"
#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/backend/cuda/gemm.hpp"
#include "pdiff/core/philox.hpp"

using namespace pdiff;

namespace {
Tensor<float> randn(Shape s, std::uint64_t seed) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  return t;
}
double nmse(const Tensor<float>& ref, const Tensor<float>& got) {
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    const double d = double(ref(i)) - double(got(i));
    num += d * d;
    den += double(ref(i)) * double(ref(i));
  }
  return den > 0 ? num / den : num;
}
Tensor<float> bf16_round(const Tensor<float>& x) { return convert<float>(convert<bf16>(x)); }

// Runs one problem on the GPU in f32 and bf16 and compares with the CPU.
void check_gemm(Shape sa, Shape sb, Shape sc, GemmArgs g, std::uint64_t seed = 1) {
  CAPTURE(sa);
  CAPTURE(sb);
  CAPTURE(g.trans_a);
  CAPTURE(g.trans_b);
  const auto a = randn(sa, seed), b = randn(sb, seed + 1), c0 = randn(sc, seed + 2);
  {
    auto ref = c0.clone();
    gemm(a, b, ref, g);
    auto da = to<OnCuda>(a), db = to<OnCuda>(b);
    auto dc = to<OnCuda>(c0);
    gemm(da, db, dc, g);
    CHECK(nmse(ref, to<OnCpu>(dc)) < 1e-10);
  }
  {
    const auto ar = bf16_round(a), br = bf16_round(b), cr = bf16_round(c0);
    auto ref = cr.clone();
    gemm(ar, br, ref, g);
    auto da = to<OnCuda>(convert<bf16>(a)), db = to<OnCuda>(convert<bf16>(b));
    auto dc = to<OnCuda>(convert<bf16>(c0));
    gemm(da, db, dc, g);
    CHECK(nmse(ref, convert<float>(to<OnCpu>(dc))) < 1e-4);
  }
}
}  // namespace

TEST_CASE("rank-2 gemm, every transpose combination") {
  const std::int64_t m = 37, n = 50, k = 64;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      check_gemm(ta ? Shape{k, m} : Shape{m, k}, tb ? Shape{n, k} : Shape{k, n}, {m, n}, {.trans_a = ta, .trans_b = tb});
}

TEST_CASE("large problems are tuned on their first call (timed candidates), and the result still equals the CPU") {
  // 2·M·N·K = 2³³·1.07: over the tuning threshold; a second call reuses the pick
  check_gemm({1024, 2048}, {2176, 2048}, {1024, 2176}, {.trans_b = true}, 3);
  check_gemm({1024, 2048}, {2176, 2048}, {1024, 2176}, {.trans_b = true}, 4);
  check_gemm({2, 512, 2048}, {2048, 2176}, {2, 512, 2176}, {}, 5);  // folded batch
}

TEST_CASE("alpha and beta") {
  check_gemm({16, 24}, {40, 24}, {16, 40}, {.trans_b = true, .alpha = 0.5f, .beta = 2.0f});
  check_gemm({16, 24}, {24, 40}, {16, 40}, {.alpha = -1.0f, .beta = 1.0f});
}

TEST_CASE("batched gemm, every transpose combination") {
  const std::int64_t bt = 3, m = 20, n = 33, k = 48;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      check_gemm(ta ? Shape{bt, k, m} : Shape{bt, m, k}, tb ? Shape{bt, n, k} : Shape{bt, k, n}, {bt, m, n},
                 {.trans_a = ta, .trans_b = tb});
  check_gemm({2, 3, 8, 16}, {2, 3, 16, 8}, {2, 3, 8, 8}, {});  // two batch dimensions
}

TEST_CASE("a rank-2 operand is shared by every batch entry") {
  const std::int64_t bt = 4, m = 24, n = 40, k = 32;
  check_gemm({bt, m, k}, {n, k}, {bt, m, n}, {.trans_b = true});  // linear layer: folded into M
  check_gemm({bt, m, k}, {k, n}, {bt, m, n}, {});
  check_gemm({bt, k, m}, {n, k}, {bt, m, n}, {.trans_a = true, .trans_b = true});  // stride 0 on b
  check_gemm({m, k}, {bt, k, n}, {bt, m, n}, {});                                   // stride 0 on a
  check_gemm({m, k}, {bt, n, k}, {bt, m, n}, {.trans_b = true, .beta = 1.0f});
}

TEST_CASE("operands that are slices at odd offsets (2-byte aligned bf16)") {
  const std::int64_t m = 9, n = 11, k = 13;
  const auto a = randn({m + 1, k}, 7), b = randn({n, k}, 8);
  auto ref = Tensor<float>::zeros({m, n});
  const auto ar = bf16_round(a.slice(1, m + 1).clone()), br = bf16_round(b);
  gemm(ar, br, ref, {.trans_b = true});
  auto da = to<OnCuda>(convert<bf16>(a)), db = to<OnCuda>(convert<bf16>(b));
  Tensor<bf16, OnCuda> dc({m, n});
  gemm(da.slice(1, m + 1), db, dc, {.trans_b = true});
  CHECK(nmse(ref, convert<float>(to<OnCpu>(dc))) < 1e-4);
}

TEST_CASE("shape errors name the operands") {
  Tensor<float, OnCuda> a({4, 8}), b({9, 5}), c({4, 5});
  CHECK_THROWS_WITH_AS(gemm(a, b, c), doctest::Contains("inner dimensions differ"), Error);
}

TEST_CASE("K = 0 with beta = 0 writes zeros") {
  Tensor<float, OnCuda> a({4, 0}), b({0, 5});
  auto c = to<OnCuda>(randn({4, 5}, 3));
  gemm(a, b, c);
  auto h = to<OnCpu>(c);
  for (int i = 0; i < 20; ++i) CHECK(h(i) == 0.0f);
}
