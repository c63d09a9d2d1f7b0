// pdiff/comm/detail/nccl_state.hpp — the parts of NcclComm below the collectives (only with
// PDIFF_WITH_NCCL):
//
// | entity            | role                                                                    |
// |-------------------|-------------------------------------------------------------------------|
// | nccl_type<T>()    | the ncclDataType_t of an element type (float, double, bf16, f16, i32, i64, u8) |
// | NcclWorld         | what the ranks of one process share: the poison flag and its reason, the timeout |
// | NcclHandle        | one ncclComm_t and its device; its destructor finalises without blocking |
// | nccl_reap()       | destroys finalised communicators (finalising may need the peers, so a   |
// |                   | destructor never waits for it longer than a short grace)                |
// Communicators are created nonblocking (ncclConfig_t::blocking = 0): every NCCL call returns at
// once and its completion is polled, so a failed or absent peer ends in an error, not a hang.
#pragma once

#if defined(PDIFF_WITH_NCCL)
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "pdiff/backend/cuda/caching_allocator.hpp"
#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"

namespace pdiff::detail {

template <class T>
constexpr ncclDataType_t nccl_type() {
  if constexpr (std::is_same_v<T, float>) return ncclFloat32;
  else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
  else if constexpr (std::is_same_v<T, bf16>) return ncclBfloat16;
  else if constexpr (std::is_same_v<T, f16>) return ncclFloat16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return ncclInt32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return ncclInt64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return ncclUint8;
  else static_assert(sizeof(T) == 0, "NcclComm: element type must be float, double, bf16, f16, int32, int64 or uint8");
}

inline ncclConfig_t nccl_nonblocking_config() {
  ncclConfig_t c = NCCL_CONFIG_INITIALIZER;
  c.blocking = 0;
  return c;
}

// NCCL calls return ncclInProgress on nonblocking communicators; anything else but success is an error.
inline bool nccl_ok(ncclResult_t r) { return r == ncclSuccess || r == ncclInProgress; }

inline std::string nccl_error_text(ncclResult_t r, ncclComm_t c) {
  std::string s = ncclGetErrorString(r);
  if (const char* last = ncclGetLastError(c); last && *last) s += cat(" (", last, ")");
  return s;
}

struct NcclWorld {
  std::chrono::milliseconds timeout{60'000};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string reason;
  bool mpi = false;  // ranks are processes: the poison also travels over MPI (nccl_comm.hpp)

  // Records the first failure; returns false if one was already recorded.
  bool poison(const std::string& why) {
    std::lock_guard lk(mu);
    if (failed.load()) return false;
    reason = why;
    failed.store(true);
    return true;
  }
  std::string why() {
    std::lock_guard lk(mu);
    return reason;
  }
};

// Communicators finalised but not yet destroyed (process-wide, never freed: used at exit too).
struct NcclGraveyard {
  std::mutex mu;
  std::vector<std::pair<ncclComm_t, int>> pending;  // (comm, device)
  static NcclGraveyard& get() {
    static NcclGraveyard* g = new NcclGraveyard();
    return *g;
  }
};

// Destroys every pending communicator whose finalisation completed (or failed: then aborts it);
// waits up to `grace` for `mine` to be among them.
inline void nccl_reap(ncclComm_t mine, std::chrono::milliseconds grace) {
  auto& g = NcclGraveyard::get();
  const auto end = std::chrono::steady_clock::now() + grace;
  int prev = 0;
  cudaGetDevice(&prev);
  for (;;) {
    bool mine_left = false;
    {
      std::lock_guard lk(g.mu);
      for (std::size_t i = 0; i < g.pending.size();) {
        auto [c, dev] = g.pending[i];
        ncclResult_t st = ncclSuccess;
        ncclCommGetAsyncError(c, &st);
        if (st == ncclInProgress) {
          mine_left = mine_left || c == mine;
          ++i;
          continue;
        }
        cudaSetDevice(dev);
        if (st == ncclSuccess) ncclCommDestroy(c);
        else ncclCommAbort(c);
        g.pending.erase(g.pending.begin() + std::ptrdiff_t(i));
      }
    }
    if (!mine_left || std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  cudaSetDevice(prev);
  cudaGetLastError();
}

struct NcclHandle {
  ncclComm_t comm = nullptr;
  int device = 0;
  bool aborted = false;
  void* scratch = nullptr;  // 4 device bytes for barrier(), from the caching allocator
  std::shared_ptr<NcclWorld> world;

  NcclHandle(ncclComm_t c, int d, std::shared_ptr<NcclWorld> w) : comm(c), device(d), world(std::move(w)) {}
  NcclHandle(const NcclHandle&) = delete;
  NcclHandle& operator=(const NcclHandle&) = delete;

  // Kills this rank's pending NCCL kernels and frees the communicator (idempotent).
  void abort_comm() noexcept {
    if (aborted || !comm) return;
    aborted = true;
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    ncclCommAbort(comm);
    cudaSetDevice(prev);
    cudaGetLastError();
  }

  ~NcclHandle() {
    if (scratch) CudaCachingAllocator::instance().deallocate(scratch);
    finalize();
  }
  void finalize() noexcept {
    if (aborted || !comm) return;
    if (world && world->failed.load()) {
      abort_comm();
      return;
    }
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    const ncclResult_t r = ncclCommFinalize(comm);
    cudaSetDevice(prev);
    cudaGetLastError();
    if (!nccl_ok(r)) {
      abort_comm();
      return;
    }
    {
      auto& g = NcclGraveyard::get();
      std::lock_guard lk(g.mu);
      g.pending.push_back({comm, device});
    }
    nccl_reap(comm, std::chrono::milliseconds(200));
    comm = nullptr;
  }
};

}  // namespace pdiff::detail
#endif
