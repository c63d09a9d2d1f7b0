// CPU gemm against a naive triple loop: every transpose, batching, a broadcast weight, alpha/beta.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "pdiff/backend/cpu/gemm.hpp"
#include "pdiff/core/philox.hpp"

using namespace pdiff;

namespace {
Tensor<float> random(Shape s, std::uint64_t seed) {
  Tensor<float> t(s);
  Philox{seed, 0}.fill_normal(t.span());
  return t;
}

// c[b] = alpha · op(a[b or 0]) · op(b[b or 0]) + beta · c[b], in double.
void naive(const Tensor<float>& a, const Tensor<float>& b, Tensor<float>& c, const GemmArgs& g) {
  GemmDims d = gemm_dims(a.shape(), b.shape(), c.shape(), g);
  std::int64_t ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  for (std::int64_t z = 0; z < d.batch; ++z) {
    const float* pa = a.data() + (d.a_batched ? z * ar * ac : 0);
    const float* pb = b.data() + (d.b_batched ? z * br * bc : 0);
    float* pc = c.data() + z * d.m * d.n;
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < d.n; ++j) {
        double s = 0;
        for (std::int64_t k = 0; k < d.k; ++k) {
          double x = g.trans_a ? pa[k * ac + i] : pa[i * ac + k];
          double y = g.trans_b ? pb[j * bc + k] : pb[k * bc + j];
          s += x * y;
        }
        pc[i * d.n + j] = float(g.alpha * s + g.beta * pc[i * d.n + j]);
      }
  }
}

void check_close(const Tensor<float>& x, const Tensor<float>& y) {
  REQUIRE(x.numel() == y.numel());
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    num += double(x(i) - y(i)) * (x(i) - y(i));
    den += double(y(i)) * y(i);
  }
  CHECK(std::sqrt(num / den) < 1e-6);
}
}  // namespace

TEST_CASE("gemm: all four transpose cases equal the naive product") {
  const std::int64_t m = 13, n = 7, k = 29;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      CAPTURE(ta);
      CAPTURE(tb);
      GemmArgs g{bool(ta), bool(tb), 1.0f, 0.0f};
      auto a = random(ta ? Shape{k, m} : Shape{m, k}, 1);
      auto b = random(tb ? Shape{n, k} : Shape{k, n}, 2);
      Tensor<float> c({m, n}), r = Tensor<float>::zeros({m, n});
      gemm(a, b, c, g);
      naive(a, b, r, g);
      check_close(c, r);
    }
}

TEST_CASE("gemm: batched, broadcast weight, alpha and beta") {
  auto a = random({3, 2, 5, 8}, 3);  // batch (3, 2)
  auto w = random({6, 8}, 4);         // a weight shared by all 6 batch entries, used transposed
  GemmArgs g{false, true, 0.5f, 2.0f};
  auto c = random({3, 2, 5, 6}, 5);
  auto r = c.clone();
  gemm(a, w, c, g);
  naive(a, w, r, g);
  check_close(c, r);

  auto b = random({6, 8, 4}, 6);
  auto a2 = random({6, 5, 8}, 7);
  Tensor<float> c2({6, 5, 4}), r2 = Tensor<float>::zeros({6, 5, 4});
  gemm(a2, b, c2);
  naive(a2, b, r2, {});
  check_close(c2, r2);
}

TEST_CASE("gemm: shape errors are clear") {
  Tensor<float> a({4, 5}), b({6, 7}), c({4, 7});
  CHECK_THROWS_WITH_AS(gemm(a, b, c), doctest::Contains("inner dimensions differ"), Error);
  Tensor<float> b2({5, 7}), c2({4, 8});
  CHECK_THROWS_WITH_AS(gemm(a, b2, c2), doctest::Contains("must end in (4, 7)"), Error);
  Tensor<float> a3({2, 4, 5}), c3({3, 4, 7});
  CHECK_THROWS_WITH_AS(gemm(a3, b2, c3), doctest::Contains("batch sizes"), Error);
}

// attention and conv2d call the raw GEMM on strided views (one head of (S, H, D) rows; a band of output
// rows inside (O, Ho·Wo)): every transpose with leading dimensions wider than the operands.
TEST_CASE("sgemm_rm: leading dimensions wider than the operands, every transpose, alpha and beta") {
  const std::int64_t m = 7, n = 5, k = 9, pad = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const std::int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
      const std::int64_t lda = ac + pad, ldb = bc + 2 * pad, ldc = n + pad;
      auto a = random({ar, lda}, 11), b = random({br, ldb}, 12), c = random({m, ldc}, 13);
      const auto c0 = c.clone();
      detail::sgemm_rm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.0f, c.data(), ldc);
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < ldc; ++j) {
          if (j >= n) {  // outside the view: untouched
            CHECK(c(i * ldc + j) == c0(i * ldc + j));
            continue;
          }
          double s = 0;
          for (std::int64_t x = 0; x < k; ++x)
            s += double(ta ? a(x * lda + i) : a(i * lda + x)) * double(tb ? b(j * ldb + x) : b(x * ldb + j));
          CHECK(c(i * ldc + j) == doctest::Approx(0.5 * s + 2.0 * c0(i * ldc + j)).epsilon(1e-5));
        }
    }
}

TEST_CASE("cpu GEMM threads: PDIFF_CPU_THREADS when it is a positive number, else 1") {
  ::unsetenv("PDIFF_CPU_THREADS");
  CHECK(cpu_threads_per_rank() == 1);
  const int before = cpu_gemm_threads();
  ::setenv("PDIFF_CPU_THREADS", "3", 1);
  CHECK(cpu_threads_per_rank() == 3);
  {
    const CpuThreadsForRanks scope;
    CHECK(cpu_gemm_threads() == (cpu_gemm_is_openblas ? 3 : 1));
  }
  CHECK(cpu_gemm_threads() == before);
  for (const char* bad : {"0", "-2", "two", "3x", ""}) {
    ::setenv("PDIFF_CPU_THREADS", bad, 1);
    CHECK(cpu_threads_per_rank() == 1);
  }
  ::unsetenv("PDIFF_CPU_THREADS");
}
