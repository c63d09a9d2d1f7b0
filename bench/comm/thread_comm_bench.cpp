// bench/comm/thread_comm_bench.cpp — bandwidth of ThreadComm collectives (all_reduce, all_gather,
// all_to_all) at 2 and 4 ranks, messages of 4 KiB … 64 MiB of float.
//
// | argument | meaning                                              |
// |----------|------------------------------------------------------|
// | 0        | collective (0 all_reduce, 1 all_gather, 2 all_to_all) |
// | 1        | ranks P (threads of this process)                    |
// | 2        | message size in bytes (see comm_bench_common.hpp)     |
// The benchmark thread is rank 0; P−1 helper threads run the same batch of collectives each time
// rank 0 starts an iteration, so the measured time is the collective's, not thread start-up.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "comm_bench_common.hpp"
#include "pdiff/comm/thread_comm.hpp"

namespace {

using pdiff::bench::Coll;

void BM_ThreadComm(benchmark::State& st) {
  const auto coll = Coll(st.range(0));
  const int p = int(st.range(1));
  const auto bytes = std::size_t(st.range(2));
  const int batch = pdiff::bench::batch_for(bytes);
  std::vector<pdiff::ThreadComm> comms = pdiff::ThreadComm::create_world(p);

  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t go = 0;  // batches started by rank 0
  bool stop = false;
  std::vector<std::thread> helpers;
  for (int r = 1; r < p; ++r)
    helpers.emplace_back([&, r] {
      pdiff::bench::CollBuffers buf(coll, bytes, p);  // first touch on the rank's own thread
      std::uint64_t seen = 0;
      for (;;) {
        {
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return go != seen || stop; });
          if (go == seen) return;
          seen = go;
        }
        for (int i = 0; i < batch; ++i) buf.run(comms[std::size_t(r)], coll);
      }
    });
  auto start_batch = [&] {
    {
      std::lock_guard lk(mu);
      ++go;
    }
    cv.notify_all();
  };

  pdiff::bench::CollBuffers buf(coll, bytes, p);
  start_batch();  // warm-up: page faults and first rendezvous outside the timing
  for (int i = 0; i < batch; ++i) buf.run(comms[0], coll);
  for (auto _ : st) {
    start_batch();
    for (int i = 0; i < batch; ++i) buf.run(comms[0], coll);
  }
  {
    std::lock_guard lk(mu);
    stop = true;
  }
  cv.notify_all();
  for (auto& t : helpers) t.join();
  pdiff::bench::set_counters(st, coll, p, bytes, std::int64_t(st.iterations()) * batch);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int coll : {0, 1, 2})
    for (int p : {2, 4})
      for (std::int64_t kib = 4; kib <= 64 * 1024; kib *= 4) b->Args({coll, p, kib * 1024});
}

}  // namespace

BENCHMARK(BM_ThreadComm)->Apply(sizes)->ArgNames({"coll", "ranks", "bytes"})->UseRealTime()->MinTime(0.2);

BENCHMARK_MAIN();
