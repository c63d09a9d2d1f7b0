// bench/comm/comm_bench_common.hpp — what the ThreadComm and MpiComm benchmarks share: the
// collectives measured, their buffers and the bandwidth counters.
//
// | collective  | message size S means                    | bus factor (busbw / algbw) |
// |-------------|-----------------------------------------|----------------------------|
// | all_reduce  | S bytes reduced in place on every rank  | 2·(P−1)/P                  |
// | all_gather  | S bytes received per rank (S/P sent)    | (P−1)/P                    |
// | all_to_all  | S bytes sent and received per rank      | (P−1)/P                    |
// Sizes run from 4 KiB to 64 MiB of float; algbw = S / time per collective (nccl-tests' convention).
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pdiff/comm/communicator.hpp"

namespace pdiff::bench {

enum class Coll { all_reduce, all_gather, all_to_all };

inline double bus_factor(Coll c, int p) {
  return c == Coll::all_reduce ? 2.0 * (p - 1) / p : double(p - 1) / p;
}

// Buffers of one rank for a message of `bytes`: floats, the element count divisible by P.
struct CollBuffers {
  std::size_t n = 0;  // elements per rank block (all_gather, all_to_all) or per buffer (all_reduce)
  std::vector<float> a, b;
  CollBuffers(Coll c, std::size_t bytes, int p) {
    const std::size_t total = bytes / sizeof(float) / std::size_t(p) * std::size_t(p);
    n = c == Coll::all_reduce ? total : total / std::size_t(p);
    a.assign(c == Coll::all_gather ? n : total, 1.0f);
    b.assign(c == Coll::all_reduce ? 0 : total, 0.0f);
  }
  template <class C>
  void run(C& comm, Coll c) {
    switch (c) {
      case Coll::all_reduce: comm.all_reduce(a.data(), n, ReduceOp::sum); break;
      case Coll::all_gather: comm.all_gather(a.data(), b.data(), n); break;
      case Coll::all_to_all: comm.all_to_all(a.data(), b.data(), n); break;
    }
  }
};

// Collectives per timed iteration: enough that small messages are not dominated by the loop.
inline int batch_for(std::size_t bytes) {
  const std::size_t b = (std::size_t(4) << 20) / bytes;
  return int(b < 1 ? 1 : (b > 64 ? 64 : b));
}

inline void set_counters(benchmark::State& st, Coll c, int p, std::size_t bytes, std::int64_t collectives) {
  const double moved = double(bytes) * double(collectives);
  st.SetBytesProcessed(std::int64_t(moved));
  st.counters["busbw"] = benchmark::Counter(moved * bus_factor(c, p), benchmark::Counter::kIsRate,
                                            benchmark::Counter::kIs1024);
  st.counters["ranks"] = p;
  st.SetLabel(c == Coll::all_reduce ? "all_reduce" : c == Coll::all_gather ? "all_gather" : "all_to_all");
}

}  // namespace pdiff::bench
