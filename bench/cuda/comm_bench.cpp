// bench/cuda/comm_bench.cpp — the device communicator of thread ranks (DeviceThreadComm = DirectComm<OnCuda>:
// address exchange, device-to-device copies, rank-ordered reduction on the device) on this machine's GPUs:
// P ranks take GPU rank % (GPU count), so on a one-GPU machine every rank shares it (TP<2>, Ulysses<2>,
// CFG<2> ... on one device run on this). Bus bandwidth by nccl-tests' convention (comm_bench_common.hpp).
//
// | argument | meaning                                               |
// |----------|-------------------------------------------------------|
// | 0        | collective (0 all_reduce, 1 all_gather, 2 all_to_all) |
// | 1        | ranks P (2 or 4)                                      |
// | 2        | message size in bytes of float                        |
// Each case launches its P rank threads once; the root times batches of collectives between barriers
// (each collective returns with its data complete, so no extra synchronisation is needed).
#include <algorithm>
#include <chrono>
#include <vector>

#include "../comm/comm_bench_common.hpp"
#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/parallel/launch.hpp"
#include "pdiff/parallel/layout.hpp"
#include "pdiff/parallel/policies.hpp"

using namespace pdiff;
using pdiff::bench::Coll;

namespace {

template <class L>
std::vector<double> timed_batches(Coll coll, std::size_t bytes, int batch, int reps) {
  const int P = L::world_size;
  std::vector<double> secs;
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    const std::size_t total = bytes / sizeof(float) / std::size_t(P) * std::size_t(P);
    const std::size_t n = coll == Coll::all_reduce ? total : total / std::size_t(P);
    auto a = Tensor<float, OnCuda>::zeros({std::int64_t(coll == Coll::all_gather ? n : total)});
    auto b = Tensor<float, OnCuda>::zeros({std::int64_t(coll == Coll::all_reduce ? 1 : total)});
    auto& c = rank.world;
    auto once = [&] {
      switch (coll) {
        case Coll::all_reduce: c.all_reduce(a.data(), n, ReduceOp::sum); break;
        case Coll::all_gather: c.all_gather(a.data(), b.data(), n); break;
        case Coll::all_to_all: c.all_to_all(a.data(), b.data(), n); break;
      }
    };
    once();  // warm-up: the allocator's pool, the first rendezvous
    for (int r = 0; r < reps; ++r) {
      c.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < batch; ++i) once();
      c.barrier();
      if (rank.is_root()) secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  });
  return secs;
}

void BM_device_thread_comm(benchmark::State& st) {
  if (cuda_device_count() == 0) return st.SkipWithError("no CUDA device");
  const auto coll = Coll(st.range(0));
  const int P = int(st.range(1));
  const auto bytes = std::size_t(st.range(2));
  const int batch = bench::batch_for(bytes), reps = 5;
  const auto secs = P == 2 ? timed_batches<Layout<TP<2>, OnCuda>>(coll, bytes, batch, reps)
                           : timed_batches<Layout<TP<4>, OnCuda>>(coll, bytes, batch, reps);
  std::size_t k = 0;
  for (auto _ : st) st.SetIterationTime(secs[k++ % secs.size()]);
  bench::set_counters(st, coll, P, bytes, std::int64_t(st.iterations()) * batch);
  st.counters["gpus"] = double(std::min(P, cuda_device_count()));
}
BENCHMARK(BM_device_thread_comm)
    ->ArgNames({"coll", "P", "bytes"})
    ->ArgsProduct({{0, 1, 2}, {2, 4}, {1 << 20, 16 << 20, 256 << 20}})
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
