// launch<L> under `mpirun -np 4`: one rank per process, axis communicators from MpiComm::split,
// and a clear error when the process count does not match the layout.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "pdiff/parallel/launch.hpp"
#include "pdiff/parallel/layout.hpp"

using namespace pdiff;

TEST_CASE("launch<TP<2> x CFG<2>> runs one rank per process with its axis groups") {
  using L = Layout<TP<2>, CFG<2>, OnCpu>;
  bool ran = false;
  launch<L>({}, [&](auto& rank) {
    CHECK(std::is_same_v<typename std::decay_t<decltype(rank)>::comm, MpiComm>);  // mpirun → processes
    CHECK(rank.coords == L::coords(rank.index));
    int v = rank.index;
    rank.tp.all_reduce(&v, 1, ReduceOp::sum);
    CHECK(v == 2 * (rank.index - rank.coords.tp) + 1);
    int g[2];
    rank.cfg.all_gather(&rank.index, g, 1);
    CHECK(g[0] == rank.coords.tp);
    CHECK(g[1] == rank.coords.tp + 2);
    ran = true;
  });
  CHECK(ran);
}

TEST_CASE("a process count different from the layout's world size is a clear error") {
  using L = Layout<TP<2>, OnCpu>;
  CHECK_THROWS_WITH_AS(launch<L>({}, [](auto&) {}), doctest::Contains("mpirun started 4 processes but the layout needs 2"),
                       Error);
}

int main(int argc, char** argv) {
  (void)MpiComm::world();
  doctest::Context ctx(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) ctx.setOption("minimal", true);
  return ctx.run();
}
