// Built without PDIFF_WITH_CUDA/NCCL/MPI and without CUDA include paths: the umbrella header must
// compile and never pull in a CUDA header, and the CPU backend must work.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <pdiff/pdiff.hpp>

#if defined(__CUDA_RUNTIME_H__) || defined(CUDART_VERSION) || defined(NCCL_MAJOR) || defined(CUBLAS_VER_MAJOR)
#error "a CPU-only build included a CUDA header"
#endif

TEST_CASE("CPU-only build: the default backend is the CPU and a launch runs") {
  static_assert(std::is_same_v<pdiff::DefaultBackend, pdiff::OnCpu>);
  using L = pdiff::Layout<pdiff::TP<2>>;
  static_assert(std::is_same_v<L::backend, pdiff::OnCpu>);
  std::vector<float> sums(2);
  pdiff::launch<L>({}, [&](auto& rank) {
    float v = float(rank.index + 1);
    rank.tp.all_reduce(&v, 1, pdiff::ReduceOp::sum);
    sums[std::size_t(rank.index)] = v;
  });
  CHECK(sums[0] == 3.0f);
  CHECK(sums[1] == 3.0f);
}
