// bench/bench_rank.hpp — what benchmarks on several ranks share.
//
// | helper                                  | what                                                       |
// |-----------------------------------------|------------------------------------------------------------|
// | tp_sp_bytes_sent(rank)                  | bytes this rank sent on its TP, Ulysses and Ring communicators (what the layers' byte formulas count) |
// | init_for_rank(argc, argv, rank)         | benchmark::Initialize, without --benchmark_out* on ranks ≠ 0 (one process writes the file) |
// | run_for_rank(rank)                      | rank 0 runs and reports; the others run for their collectives only, reporting nothing |
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pdiff::bench {

template <class R>
std::uint64_t tp_sp_bytes_sent(const R& rank) {
  using L = typename R::layout;
  std::uint64_t t = 0;
  if constexpr (L::tp > 1) t += rank.tp.stats().total();
  if constexpr (L::ulysses > 1) t += rank.ulysses.stats().total();
  if constexpr (L::ring > 1) t += rank.ring.stats().total();
  return t;
}

struct SilentReporter : benchmark::BenchmarkReporter {
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

inline void init_for_rank(int argc, char** argv, int rank) {
  std::vector<char*> args(argv, argv + argc);
  if (rank != 0) std::erase_if(args, [](const char* a) { return std::strncmp(a, "--benchmark_out", 15) == 0; });
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
}

inline void run_for_rank(int rank) {
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
}

}  // namespace pdiff::bench
