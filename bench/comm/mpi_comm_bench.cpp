// bench/comm/mpi_comm_bench.cpp — bandwidth of MpiComm collectives (all_reduce, all_gather,
// all_to_all) across the processes of `mpirun -np P`, messages of 4 KiB … 64 MiB of float.
//
// | argument | meaning                                              |
// |----------|------------------------------------------------------|
// | 0        | collective (0 all_reduce, 1 all_gather, 2 all_to_all) |
// | 1        | message size in bytes (see comm_bench_common.hpp)     |
// Every rank runs every benchmark with the same fixed iteration count (an adaptive count would
// differ between ranks and mismatch the collectives); rank 0 times and prints, the others report
// nothing and ignore --benchmark_out.
#include <algorithm>
#include <cstdint>

#include "../bench_rank.hpp"
#include "comm_bench_common.hpp"
#include "pdiff/comm/mpi_comm.hpp"

#if defined(PDIFF_WITH_MPI)
namespace {

using pdiff::bench::Coll;
pdiff::MpiComm* g_world = nullptr;

void BM_MpiComm(benchmark::State& st) {
  const auto coll = Coll(st.range(0));
  const auto bytes = std::size_t(st.range(1));
  const int batch = pdiff::bench::batch_for(bytes);
  pdiff::MpiComm& comm = *g_world;
  pdiff::bench::CollBuffers buf(coll, bytes, comm.size());
  for (int i = 0; i < batch; ++i) buf.run(comm, coll);  // warm-up
  comm.barrier();
  for (auto _ : st)
    for (int i = 0; i < batch; ++i) buf.run(comm, coll);
  comm.barrier();
  pdiff::bench::set_counters(st, coll, comm.size(), bytes, std::int64_t(st.iterations()) * batch);
}

}  // namespace

int main(int argc, char** argv) {
  pdiff::MpiComm world = pdiff::MpiComm::world();
  g_world = &world;
  pdiff::bench::init_for_rank(argc, argv, world.rank());
  for (int coll : {0, 1, 2})
    for (std::int64_t kib = 4; kib <= 64 * 1024; kib *= 4) {
      const std::size_t bytes = std::size_t(kib) * 1024;
      const std::int64_t per_iter = std::int64_t(bytes) * pdiff::bench::batch_for(bytes);
      const std::int64_t iters = std::clamp<std::int64_t>((std::int64_t(256) << 20) / per_iter, 3, 200);
      benchmark::RegisterBenchmark("BM_MpiComm", BM_MpiComm)
          ->Args({coll, std::int64_t(bytes)})
          ->ArgNames({"coll", "bytes"})
          ->Iterations(iters)
          ->UseRealTime();
    }
  pdiff::bench::run_for_rank(world.rank());
  return 0;
}
#else
int main() { return 0; }
#endif
