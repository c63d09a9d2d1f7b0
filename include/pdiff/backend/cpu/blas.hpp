// pdiff/backend/cpu/blas.hpp — the one single-precision GEMM every CPU op calls (gemm, attention's two
// products, conv2d's im2col product), and how many threads it uses.
//
// | build                              | sgemm_rm() is                                                 |
// |------------------------------------|---------------------------------------------------------------|
// | PDIFF_WITH_OPENBLAS (found by CMake, Debian libopenblas-dev) | cblas_sgemm, row-major       |
// | otherwise                          | Eigen maps with outer strides and .noalias() (no temporary)   |
// OpenBLAS is 1.4-1.5x Eigen's sgemm at FLUX.2's shapes on one core (bench_gemm_cpu), and a TU that calls
// it does not instantiate Eigen's product templates (a header-check TU: 16 s -> 7 s).
//
// Threads (OpenBLAS only; Eigen's path is single-threaded): every rank's GEMMs use PDIFF_CPU_THREADS
// threads when it is set, else 1 — so thread ranks never oversubscribe the cores, and a result does not
// depend on the layout through the GEMM's thread split (OpenBLAS's sums differ in the last bit between
// thread counts; CFG<2> and VaePatch give bit-identical images to serial). A single-rank run uses every
// core with PDIFF_CPU_THREADS=$(nproc); with ranks, give each cores / ranks. launch() applies the rule for
// its ranks and restores the previous count after; code outside launch() gets it at its first GEMM.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#if defined(PDIFF_WITH_OPENBLAS)
#include <cblas.h>
#else
#include <Eigen/Core>
#endif

namespace pdiff {

// Threads per rank for CPU GEMMs: PDIFF_CPU_THREADS when it is a positive number, else 1.
inline int cpu_threads_per_rank() {
  if (const char* e = std::getenv("PDIFF_CPU_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(e, &end, 10);
    if (end != e && *end == '\0' && v > 0) return int(std::min<long>(v, 4096));
  }
  return 1;
}

namespace detail {
// OpenBLAS starts with every core: the rule above replaces that once, before the first GEMM or thread query.
inline void apply_default_gemm_threads_once() {
#if defined(PDIFF_WITH_OPENBLAS)
  static const bool done = [] {
    openblas_set_num_threads(cpu_threads_per_rank());
    return true;
  }();
  (void)done;
#endif
}

// c[m×n] (leading dimension ldc) = alpha · op(a) · op(b) + beta · c, all row-major; op(a) is m×k, op(b) k×n;
// lda/ldb are the row strides of a and b as stored (before the transpose).
inline void sgemm_rm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                     std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
#if defined(PDIFF_WITH_OPENBLAS)
  apply_default_gemm_threads_once();
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, blasint(m), blasint(n),
              blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc));
#else
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using S = Eigen::OuterStride<>;
  using ConstMap = Eigen::Map<const RowMat, 0, S>;
  Eigen::Map<RowMat, 0, S> C(c, m, n, S(ldc));
  const ConstMap A(a, ta ? k : m, ta ? m : k, S(lda)), B(b, tb ? n : k, tb ? k : n, S(ldb));
  auto into = [&](const auto& x, const auto& y) {
    if (beta == 0.0f) {
      if (alpha == 1.0f) C.noalias() = x * y;
      else C.noalias() = alpha * (x * y);
    } else {
      if (beta != 1.0f) C *= beta;
      C.noalias() += alpha * (x * y);
    }
  };
  if (!ta && !tb) into(A, B);
  else if (ta && !tb) into(A.transpose(), B);
  else if (!ta && tb) into(A, B.transpose());
  else into(A.transpose(), B.transpose());
#endif
}

}  // namespace detail

// True when the CPU GEMM is OpenBLAS's (the benchmarks report it).
inline constexpr bool cpu_gemm_is_openblas =
#if defined(PDIFF_WITH_OPENBLAS)
    true;
#else
    false;
#endif

// Threads of one CPU GEMM call now (1 on the Eigen path).
inline int cpu_gemm_threads() {
#if defined(PDIFF_WITH_OPENBLAS)
  detail::apply_default_gemm_threads_once();
  return openblas_get_num_threads();
#else
  return 1;
#endif
}

inline void set_cpu_gemm_threads(int n) {
#if defined(PDIFF_WITH_OPENBLAS)
  detail::apply_default_gemm_threads_once();
  openblas_set_num_threads(std::max(1, n));
#else
  (void)n;
#endif
}

// Sets the per-rank GEMM threads for its lifetime, then restores the previous count.
class CpuThreadsForRanks {
 public:
  CpuThreadsForRanks() : before_(cpu_gemm_threads()) { set_cpu_gemm_threads(cpu_threads_per_rank()); }
  ~CpuThreadsForRanks() { set_cpu_gemm_threads(before_); }
  CpuThreadsForRanks(const CpuThreadsForRanks&) = delete;
  CpuThreadsForRanks& operator=(const CpuThreadsForRanks&) = delete;

 private:
  int before_;
};

}  // namespace pdiff
