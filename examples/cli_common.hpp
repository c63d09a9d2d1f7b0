// examples/cli_common.hpp — command-line checks the example binaries share: the output file must be
// writable before any model is loaded (a bad -o never costs a whole run).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include <vector>

#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/memory.hpp"
#include "pdiff/parallel/launch.hpp"

namespace pdiff::cli {

// `out` names a file in an existing folder and can be written (tried: access() says yes to root even on
// a read-only file system; a probe file is removed again). Under mpirun every process checks at once: a
// file another one just created counts as existing.
inline void check_output(const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path p(out);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  PDIFF_CHECK(!out.empty() && !fs::is_directory(p), "-o '", out, "' must name a file");
  PDIFF_CHECK(fs::is_directory(dir), "-o '", out, "': the folder '", dir.string(), "' does not exist");
  int fd = ::open(p.c_str(), O_WRONLY);
  bool created = false;
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = ::open(p.c_str(), O_WRONLY);
  }
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (created) ::unlink(p.c_str());
  PDIFF_CHECK(fd >= 0, "-o '", out, "' is not writable: ", std::strerror(err));
}

// A CLI11 check for unsigned options: CLI11 would read -1 as 2^64 − 1.
inline std::string non_negative(const std::string& v) {
  return !v.empty() && v[0] == '-' ? "must be a non-negative integer, not " + v : std::string();
}

// Two figures of every rank (e.g. peak memory while loading and while running) on every rank, threads
// or processes alike, through the world communicator (on the layout's backend: a device communicator
// takes device buffers). Result: {a0, b0, a1, b1, ...}.
template <class L, class R>
std::vector<double> gather_pairs(R& rank, double a, double b) {
  Tensor<float> mine({2});
  mine(0) = float(a), mine(1) = float(b);
  const auto all = to<OnCpu>(all_gather(rank.world, to<typename L::backend>(mine), 0));
  return std::vector<double>(all.data(), all.data() + all.numel());
}

// Runs a model on every rank of L: load(rank) → pipeline, run(pipeline, rank) → result; keeps the root's
// result, the load time and every rank's memory peaks while loading and in all (memory<L::backend>: host
// memory on OnCpu, device memory on OnCuda). Under mpirun only the root process gets `has_result`.
template <class Result>
struct Measured {
  Result result;
  bool has_result = false;
  std::vector<double> load_peak, run_peak;  // bytes, per rank
  double load_s = 0;
};
template <class L, class Result, class Load, class Run>
Measured<Result> run_measured(Load&& load, Run&& run) {
  Measured<Result> m;
  std::mutex mu;
  using Mem = memory<typename L::backend>;
  launch<L>({}, [&](auto& rank) {
    Mem::reset_thread_peak();
    // under thread launch rank 0 is the main thread: do not count what it held before (input images)
    const double base = double(Mem::thread_live_bytes());
    const auto t = std::chrono::steady_clock::now();
    const auto pipe = load(rank);
    if (rank.is_root()) m.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    const double loaded = double(Mem::thread_peak_bytes()) - base;
    auto r = run(pipe, rank);
    const auto all = gather_pairs<L>(rank, loaded, double(Mem::thread_peak_bytes()) - base);
    if (rank.is_root()) {
      std::lock_guard lock(mu);
      for (std::size_t i = 0; i < std::size_t(L::world_size); ++i)
        m.load_peak.push_back(all[2 * i]), m.run_peak.push_back(all[2 * i + 1]);
      m.result = std::move(r);
      m.has_result = true;
    }
  });
  return m;
}

}  // namespace pdiff::cli
