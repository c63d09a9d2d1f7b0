// pdiff/parallel/launch.hpp — launch<L>(options, fn): runs fn(rank) on every rank of layout L.
//
// | mode            | ranks are                        | world communicator                   |
// |-----------------|----------------------------------|--------------------------------------|
// | Launch::threads | threads of this process          | ThreadComm                           |
// | Launch::mpi     | processes started by mpirun      | MpiComm (one rank per process)       |
// | Launch::automatic (default) | mpi when this process was started by mpirun and pdiff has MPI, else threads |
// fn receives `Rank<L, C>&` (use a generic lambda `[](auto& rank)` to accept every C). A rank that
// throws poisons the world: every other rank's pending or next collective throws within the
// communicator timeout (LaunchOptions::comm.timeout, default 60 s), never a hang. launch() rethrows
// the first failure (the cause, not the consequent "aborted" errors of the other ranks).
#pragma once

#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/mpi_comm.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/parallel/rank.hpp"

namespace pdiff {

enum class Launch { automatic, threads, mpi };

struct LaunchOptions {
  Launch mode = Launch::automatic;
  int world_size = 0;  // 0: the layout's; any other value must equal it (a clear error otherwise)
  CommOptions comm{};
};

namespace detail {
inline std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

template <class L, class Fn>
void launch_threads(const LaunchOptions& opts, Fn& fn) {
  std::vector<ThreadComm> worlds = ThreadComm::create_world(L::world_size, opts.comm);
  std::mutex mu;
  std::exception_ptr first;
  auto body = [&](int r) {
    try {
      Rank<L, ThreadComm> rank = make_rank<L>(worlds[std::size_t(r)]);
      fn(rank);
    } catch (...) {
      std::exception_ptr e = std::current_exception();
      {
        std::lock_guard lock(mu);
        if (!first) first = e;
      }
      worlds[std::size_t(r)].abort("rank " + std::to_string(r) + ": " + what_of(e));
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(std::size_t(L::world_size));
  for (int r = 1; r < L::world_size; ++r) threads.emplace_back(body, r);
  body(0);  // the calling thread is rank 0
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

#if defined(PDIFF_WITH_MPI)
template <class L, class Fn>
void launch_mpi(const LaunchOptions& opts, Fn& fn) {
  MpiComm world = MpiComm::world(opts.comm);
  PDIFF_CHECK(world.size() == L::world_size, "launch: mpirun started ", world.size(),
              " processes but the layout needs ", L::world_size, " ranks (tp ", L::tp, " x ulysses ", L::ulysses,
              " x ring ", L::ring, " x cfg ", L::cfg, " x dp ", L::dp, "); run mpirun -np ", L::world_size);
  try {
    Rank<L, MpiComm> rank = make_rank<L>(world);
    fn(rank);
  } catch (...) {
    world.abort("rank " + std::to_string(world.rank()) + ": " + what_of(std::current_exception()));
    throw;
  }
}
#endif
}  // namespace detail

template <class L, class Fn>
void launch(const LaunchOptions& opts, Fn&& fn) {
  PDIFF_CHECK(opts.world_size == 0 || opts.world_size == L::world_size, "launch: world size ", opts.world_size,
              " requested but the layout needs ", L::world_size, " ranks (tp ", L::tp, " x ulysses ", L::ulysses,
              " x ring ", L::ring, " x cfg ", L::cfg, " x dp ", L::dp, ")");
  Launch mode = opts.mode;
#if defined(PDIFF_WITH_MPI)
  if (mode == Launch::automatic) mode = MpiComm::launched_by_mpirun() ? Launch::mpi : Launch::threads;
  if (mode == Launch::mpi) return detail::launch_mpi<L>(opts, fn);
#else
  PDIFF_CHECK(mode != Launch::mpi, "launch: Launch::mpi requested but pdiff was built without MPI");
#endif
  detail::launch_threads<L>(opts, fn);
}

template <class L, class Fn>
void launch(Fn&& fn) {
  launch<L>(LaunchOptions{}, std::forward<Fn>(fn));
}

}  // namespace pdiff
