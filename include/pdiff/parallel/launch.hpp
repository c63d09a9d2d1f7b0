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
// CPU GEMM threads (OpenBLAS builds): each rank gets PDIFF_CPU_THREADS, else 1 (backend/cpu/blas.hpp);
// the previous count is restored when launch() returns.
#pragma once

#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pdiff/backend/cpu/blas.hpp"
#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/direct_comm.hpp"
#include "pdiff/comm/mpi_comm.hpp"
#if defined(PDIFF_WITH_NCCL)
#include "pdiff/comm/nccl_comm.hpp"
#endif
#include "pdiff/comm/staged_comm.hpp"
#include "pdiff/comm/thread_comm.hpp"
#include "pdiff/core/error.hpp"
#include "pdiff/core/rank_note.hpp"
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

// Thread ranks: ThreadComm on the CPU; on CUDA every rank thread takes device rank % (device count)
// and a DeviceThreadComm, so several ranks may share one GPU (tests of every layout on one device).
template <class L>
using thread_comm_t = std::conditional_t<std::is_same_v<typename L::backend, OnCpu>, ThreadComm,
#if defined(PDIFF_WITH_CUDA)
                                         DeviceThreadComm
#else
                                         void
#endif
                                         >;

template <class L, class Fn>
void launch_threads(const LaunchOptions& opts, Fn& fn) {
  using Comm = thread_comm_t<L>;
  static_assert(!std::is_void_v<Comm>, "launch: an OnCuda layout needs pdiff built with CUDA (PDIFF_WITH_CUDA)");
  std::vector<Comm> worlds = Comm::create_world(L::world_size, opts.comm);
  const CpuThreadsForRanks gemm_threads;
  std::mutex mu;
  std::exception_ptr first;
  auto body = [&](int r) {
    try {
#if defined(PDIFF_WITH_CUDA)
      if constexpr (std::is_same_v<typename L::backend, OnCuda>) {
        const int n = cuda_device_count();
        PDIFF_CHECK(n > 0, "launch: the layout runs on CUDA but no GPU is visible (", L::world_size, " ranks)");
        PDIFF_CUDA_CHECK(cudaSetDevice(r % n));  // this rank thread's device for its whole life
      }
#endif
      const RankScope note(r, L::world_size);  // named by out-of-memory errors
      Rank<L, Comm> rank = make_rank<L>(worlds[std::size_t(r)]);
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
// Process ranks: MpiComm on the CPU; on CUDA NCCL bootstrapped over MPI (each process on its node-local
// GPU), or, in a build without NCCL, MpiComm with device buffers staged through the host.
template <class L>
using mpi_comm_t = std::conditional_t<std::is_same_v<typename L::backend, OnCpu>, MpiComm,
#if defined(PDIFF_WITH_NCCL)
                                      NcclComm
#elif defined(PDIFF_WITH_CUDA)
                                      StagedComm<MpiComm, OnCuda>
#else
                                      void
#endif
                                      >;

template <class L, class Fn>
void launch_mpi(const LaunchOptions& opts, Fn& fn) {
  using Comm = mpi_comm_t<L>;
  static_assert(!std::is_void_v<Comm>, "launch: an OnCuda layout needs pdiff built with CUDA (PDIFF_WITH_CUDA)");
  MpiComm mpi = MpiComm::world(opts.comm);
  const CpuThreadsForRanks gemm_threads;
  PDIFF_CHECK(mpi.size() == L::world_size, "launch: mpirun started ", mpi.size(),
              " processes but the layout needs ", L::world_size, " ranks (", mesh_text<L>(), "); run mpirun -np ",
              L::world_size);
  Comm world = [&] {
#if defined(PDIFF_WITH_NCCL)
    if constexpr (std::is_same_v<Comm, NcclComm>) return NcclComm::from_mpi(mpi, -1, opts.comm);
    else
#endif
    if constexpr (std::is_same_v<Comm, MpiComm>) return mpi;
    else return Comm(mpi);
  }();
  try {
    const RankScope note(world.rank(), L::world_size);  // named by out-of-memory errors
    Rank<L, Comm> rank = make_rank<L>(world);
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
              " requested but the layout needs ", L::world_size, " ranks (", mesh_text<L>(), ")");
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
