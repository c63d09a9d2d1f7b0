// Rank and launch on thread ranks: degree-1 axes cost no bytes and no communicator; axis groups
// match the layout's geometry; a failing rank ends launch() with its error; world-size errors.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/core/tensor.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/parallel/layout.hpp"

using namespace pdiff;

using Serial = Rank<Layout<OnCpu>, ThreadComm>;
using Tp2 = Rank<Layout<TP<2>, OnCpu>, ThreadComm>;
using Full = Rank<Layout<TP<2>, Ulysses<2>, Ring<2>, CFG<2>, DP<2>, EP<4>, VaePatch<2>, OnCpu>, ThreadComm>;
// degree-1 axes are empty types that share storage: a serial rank is the world communicator + index + coords
static_assert(std::is_same_v<decltype(Serial{}.tp), NoComm<Axis::tp>>);
static_assert(std::is_empty_v<NoComm<Axis::tp>> && std::is_empty_v<SelfComm>);
static_assert(sizeof(Serial) == sizeof(ThreadComm) + sizeof(int) + sizeof(Coords) ||
              sizeof(Serial) <= sizeof(ThreadComm) + sizeof(int) + sizeof(Coords) + alignof(ThreadComm));
static_assert(sizeof(Tp2) >= sizeof(Serial) + sizeof(ThreadComm));
static_assert(std::is_same_v<decltype(Tp2{}.tp), ThreadComm> && std::is_same_v<decltype(Tp2{}.cfg), NoComm<Axis::cfg>>);
static_assert(sizeof(Full) >= sizeof(Serial) + 7 * sizeof(ThreadComm));

TEST_CASE("launch: axis groups follow the geometry (TP<2> x Ulysses<2> x CFG<2>, 8 thread ranks)") {
  using L = Layout<CFG<2>, TP<2>, Ulysses<2>, OnCpu>;
  std::vector<int> tp_sum(8), cfg_first(8), sp_size(8);
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    CHECK(rank.coords == L::coords(rank.index));
    CHECK(rank.tp.rank() == rank.coords.tp);
    CHECK(rank.ulysses.rank() == rank.coords.ulysses);
    CHECK(rank.cfg.rank() == rank.coords.cfg);
    int v = rank.index;
    rank.tp.all_reduce(&v, 1, ReduceOp::sum);
    tp_sum[std::size_t(rank.index)] = v;
    std::vector<int> g(std::size_t(rank.cfg.size()));
    rank.cfg.all_gather(&rank.index, g.data(), 1);
    cfg_first[std::size_t(rank.index)] = g[0];
    sp_size[std::size_t(rank.index)] = rank.sp.size();
  });
  for (int r = 0; r < 8; ++r) {
    const auto grp = L::group<Axis::tp>(r);
    CHECK(tp_sum[std::size_t(r)] == grp[0] + grp[1]);
    CHECK(cfg_first[std::size_t(r)] == L::group<Axis::cfg>(r)[0]);
    CHECK(sp_size[std::size_t(r)] == 2);
  }
}

TEST_CASE("launch: the first failure is rethrown; the other ranks do not hang") {
  std::atomic<int> aborted{0};
  using Tp4 = Layout<TP<4>, OnCpu>;
  CHECK_THROWS_WITH_AS(launch<Tp4>({.mode = Launch::threads},
                                                    [&](auto& rank) {
                                                      if (rank.index == 3) throw Error("rank 3 broke");
                                                      float x = 1;
                                                      try {
                                                        rank.tp.all_reduce(&x, 1, ReduceOp::sum);
                                                      } catch (const Error&) {
                                                        ++aborted;
                                                        throw;
                                                      }
                                                    }),
                       doctest::Contains("rank 3 broke"), Error);
  CHECK(aborted.load() == 3);
}

TEST_CASE("launch: a world size other than the layout's is a clear error") {
  using L = Layout<TP<2>, CFG<2>, OnCpu>;
  CHECK_THROWS_WITH_AS(launch<L>({.mode = Launch::threads, .world_size = 3}, [](auto&) {}),
                       doctest::Contains("world size 3 requested but the layout needs 4 ranks (tp 2 x ulysses 1 x ring 1 x cfg 2 x dp 1)"),
                       Error);
}

TEST_CASE("launch: every rank's CPU GEMMs use PDIFF_CPU_THREADS threads (1 by default); the count comes back after") {
  const int before = cpu_gemm_threads();
  for (const char* env : {(const char*)nullptr, "2"}) {
    if (env) ::setenv("PDIFF_CPU_THREADS", env, 1);
    else ::unsetenv("PDIFF_CPU_THREADS");
    std::vector<int> seen(4);
    launch<Layout<TP<2>, CFG<2>, OnCpu>>({.mode = Launch::threads},
                                         [&](auto& rank) { seen[std::size_t(rank.index)] = cpu_gemm_threads(); });
    const int want = cpu_gemm_is_openblas && env ? 2 : 1;
    for (int t : seen) CHECK(t == want);
    CHECK(cpu_gemm_threads() == before);
  }
  ::unsetenv("PDIFF_CPU_THREADS");
}

TEST_CASE("launch: an out-of-memory error names the rank, the size asked and the planner's prediction") {
  CHECK(this_rank_note().rank == -1);  // outside a launch
  std::vector<std::string> msg(2);
  launch<Layout<TP<2>, OnCpu>>({.mode = Launch::threads}, [&](auto& rank) {
    CHECK(this_rank_note().rank == rank.index);
    const PredictedBytes p(std::int64_t(3) << 30, "two images of 1024x1024");
    msg[std::size_t(rank.index)] = out_of_memory_message("memory<OnCuda> on device 0", std::int64_t(1) << 30,
                                                         "out of memory", std::int64_t(5) << 29, "");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // the sanitizers' allocators abort instead
    // a host allocation no machine has: the same message from memory<OnCpu>, not a bare std::bad_alloc
    const std::string want = detail::cat("memory<OnCpu>: rank ", rank.index, " of 2 asked for 1073741824.00 GiB (1152921504606846976 bytes): the host has no memory left");
    CHECK_THROWS_WITH_AS(Tensor<float>({std::int64_t(1) << 58}), doctest::Contains(want.c_str()), Error);
#endif
  });
  CHECK(msg[1] == "memory<OnCuda> on device 0: rank 1 of 2 asked for 1.00 GiB (1073741824 bytes): out of memory; "
                  "this rank holds 2.50 GiB; the planner predicted 3.00 GiB per rank for two images of 1024x1024 "
                  "(try a layout with more ranks, a smaller image, fewer images per forward)");
  CHECK(this_rank_note().rank == -1);  // restored after the launch
  CHECK(this_rank_note().predicted == 0);
}

TEST_CASE("layout text for messages and the examples: the mesh in rank order, then the overlays") {
  CHECK(mesh_text<Layout<TP<2>, CFG<2>>>() == "tp 2 x ulysses 1 x ring 1 x cfg 2 x dp 1");
  CHECK(layout_text<Layout<TP<2>, CFG<2>, VaePatch<2>>>() == "tp 2 x ulysses 1 x ring 1 x cfg 2 x dp 1 (ep 1, vae_patch 2)");
}
