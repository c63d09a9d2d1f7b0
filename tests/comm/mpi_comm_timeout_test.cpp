// MpiComm under `mpirun -np 2`: a rank that never joins a collective. Rank 0 waits past its short
// timeout, throws an Error naming the collective, and poisons the world; rank 1, arriving late at
// another collective, gets an Error that names rank 0's timeout instead of waiting forever.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "pdiff/comm/mpi_comm.hpp"

using namespace pdiff;

TEST_CASE("a rank that never arrives ends in a timeout on the waiting rank and an error on the late one") {
  auto c = MpiComm::world(CommOptions{std::chrono::milliseconds(300)});
  REQUIRE(c.size() == 2);
  c.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  if (c.rank() == 0) {
    float x = 1;
    CHECK_THROWS_WITH_AS(c.all_reduce(&x, 1, ReduceOp::sum), doctest::Contains("all_reduce on rank 0 of 2 timed out after 300 ms"),
                         Error);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited >= std::chrono::milliseconds(300));
    CHECK(waited < std::chrono::seconds(3));
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // misses rank 0's all_reduce
    CHECK_THROWS_WITH_AS(c.barrier(), doctest::Contains("aborted: rank 0 failed: MpiComm: all_reduce on rank 0"), Error);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  }
}

int main(int argc, char** argv) {
  auto world = MpiComm::world();  // initialises MPI (finalised at exit)
  doctest::Context ctx(argc, argv);
  if (world.rank() != 0) ctx.setOption("minimal", true);
  return ctx.run();
}
