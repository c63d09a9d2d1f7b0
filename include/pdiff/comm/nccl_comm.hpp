// pdiff/comm/nccl_comm.hpp — NcclComm: GPU ranks, one device each (only with PDIFF_WITH_NCCL).
//
// | construction                         | ranks                                                   |
// |--------------------------------------|---------------------------------------------------------|
// | NcclComm::init_all(devices)          | one process, one thread per device: rank i on devices[i] |
// |                                      | (ncclCommInitRankConfig in a group, what ncclCommInitAll does, but nonblocking) |
// | NcclComm::from_mpi(mpi, device)      | one process per rank; the unique id is broadcast over MpiComm (PDIFF_WITH_MPI) |
// | split(color, key)                    | ncclCommSplit                                           |
//
// | collective           | NCCL                                                             |
// |----------------------|------------------------------------------------------------------|
// | all_reduce (in place)| ncclAllReduce (sum, max)                                         |
// | all_gather           | ncclAllGather                                                    |
// | reduce_scatter       | ncclReduceScatter                                                |
// | all_to_all(_v)       | ncclSend/ncclRecv to every peer in one group (zero counts skipped) |
// | broadcast            | ncclBroadcast (in place)                                         |
// | send / recv          | ncclSend / ncclRecv (rendezvous: a send completes when its recv is posted) |
// | barrier              | ncclAllReduce of one int                                         |
// Pointers are device pointers of this rank's device; work is enqueued on current_cuda_stream()
// (which must belong to that device; the default legacy stream always does). By default every
// call waits for its work to finish, polling the stream, ncclCommGetAsyncError, the poison flag
// and CommOptions::timeout: on a timeout or NCCL error the rank calls abort(why) — ncclCommAbort
// plus poisoning the other ranks, whose waits then abort their communicators and throw — and
// throws pdiff::Error. set_blocking_wait(false) returns right after enqueueing; synchronize()
// then does the waiting. Reductions of bf16/f16 follow NCCL's order (not bit-identical to the
// host communicators). NCCL refuses two ranks on one device: simulated ranks sharing a GPU use
// ThreadComm (host buffers) instead.
#pragma once

#if defined(PDIFF_WITH_NCCL)
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/detail/nccl_state.hpp"
#include "pdiff/comm/detail/reduce.hpp"
#if defined(PDIFF_WITH_MPI)
#include "pdiff/comm/mpi_comm.hpp"
#endif

namespace pdiff {

class NcclComm {
 public:
  using memory_space = OnCuda;  // device buffers on this rank's GPU
  NcclComm() = default;

  // Rank i on devices[i], all in this process (one thread per rank afterwards). Devices must differ.
  static std::vector<NcclComm> init_all(std::span<const int> devices, CommOptions opts = {}) {
    const int n = int(devices.size());
    PDIFF_CHECK(n >= 1, "NcclComm::init_all: needs at least one device");
    const int count = cuda_device_count();
    for (int i = 0; i < n; ++i) {
      PDIFF_CHECK(devices[std::size_t(i)] >= 0 && devices[std::size_t(i)] < count, "NcclComm::init_all: device ",
                  devices[std::size_t(i)], " is not one of the ", count, " visible devices");
      for (int j = 0; j < i; ++j)
        PDIFF_CHECK(devices[std::size_t(i)] != devices[std::size_t(j)], "NcclComm::init_all: device ",
                    devices[std::size_t(i)], " given twice; NCCL refuses two ranks on one device (use ThreadComm for "
                    "simulated ranks on one GPU)");
    }
    auto world = std::make_shared<detail::NcclWorld>();
    world->timeout = opts.timeout;
    ncclUniqueId id;
    check_call(ncclGetUniqueId(&id), nullptr, "ncclGetUniqueId");
    std::vector<ncclComm_t> comms(std::size_t(n), nullptr);
    std::vector<ncclConfig_t> cfg(std::size_t(n), detail::nccl_nonblocking_config());
    {
      CudaDeviceGuard g(devices[0]);
      check_call(ncclGroupStart(), nullptr, "ncclGroupStart");
      for (int i = 0; i < n; ++i) {
        PDIFF_CUDA_CHECK(cudaSetDevice(devices[std::size_t(i)]));
        check_call(ncclCommInitRankConfig(&comms[std::size_t(i)], n, id, i, &cfg[std::size_t(i)]), nullptr,
                   "ncclCommInitRankConfig");
      }
      check_call(ncclGroupEnd(), nullptr, "ncclGroupEnd(init)");
    }
    std::vector<NcclComm> out;
    for (int i = 0; i < n; ++i) out.push_back(NcclComm(comms[std::size_t(i)], devices[std::size_t(i)], world));
    for (auto& c : out) c.wait("init", nullptr);  // a failure aborts every rank through the poison
    for (auto& c : out) c.query_rank();
    return out;
  }

#if defined(PDIFF_WITH_MPI)
  // This process's rank of `mpi` on `device` (−1: the node-local rank modulo the visible devices).
  static NcclComm from_mpi(MpiComm& mpi, int device = -1, CommOptions opts = {}) {
    if (device < 0) {
      int local = mpi.rank();
      for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
        if (const char* s = std::getenv(v)) {
          local = std::atoi(s);
          break;
        }
      const int count = cuda_device_count();
      PDIFF_CHECK(count > 0, "NcclComm::from_mpi: rank ", mpi.rank(), " sees no CUDA device");
      device = local % count;
    }
    ncclUniqueId id{};
    if (mpi.rank() == 0) check_call(ncclGetUniqueId(&id), nullptr, "ncclGetUniqueId");
    mpi.broadcast(reinterpret_cast<std::uint8_t*>(&id), sizeof id, 0);
    auto world = std::make_shared<detail::NcclWorld>();
    world->timeout = opts.timeout;
    world->mpi = true;
    ncclComm_t c = nullptr;
    ncclConfig_t cfg = detail::nccl_nonblocking_config();
    {
      CudaDeviceGuard g(device);
      check_call(ncclCommInitRankConfig(&c, mpi.size(), id, mpi.rank(), &cfg), nullptr, "ncclCommInitRankConfig");
    }
    NcclComm out(c, device, world);
    out.wait("init", nullptr);
    out.query_rank();
    return out;
  }
#endif

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return h_ ? h_->device : -1; }
  ncclComm_t native() const { return h_ ? h_->comm : nullptr; }
  CommStats stats() const { return *stats_; }
  void set_blocking_wait(bool on) { blocking_wait_ = on; }

  template <class T>
  void all_reduce(T* buf, std::size_t n, ReduceOp op) {
    run("all_reduce", [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllReduce(buf, buf, n, detail::nccl_type<T>(), nccl_op(op), c, s);
    });
    count(stats_->all_reduce, detail::ring_all_reduce_bytes(n, sizeof(T), size_));
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    run("all_gather", [&](ncclComm_t c, cudaStream_t s) {
      return ncclAllGather(send, recv, n, detail::nccl_type<T>(), c, s);
    });
    count(stats_->all_gather, std::uint64_t(size_ - 1) * n * sizeof(T));
  }
  // send: (size, n) blocks; recv: (n), block `rank` reduced over the group.
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, ReduceOp op) {
    run("reduce_scatter", [&](ncclComm_t c, cudaStream_t s) {
      return ncclReduceScatter(send, recv, n, detail::nccl_type<T>(), nccl_op(op), c, s);
    });
    count(stats_->reduce_scatter, std::uint64_t(size_ - 1) * n * sizeof(T));
  }
  // send, recv: (size, n); block j goes to rank j, block i comes from rank i.
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    run("all_to_all", [&](ncclComm_t c, cudaStream_t s) {
      ncclResult_t r = ncclGroupStart();
      for (int j = 0; j < size_ && detail::nccl_ok(r); ++j) {
        r = ncclSend(send + std::size_t(j) * n, n, detail::nccl_type<T>(), j, c, s);
        if (detail::nccl_ok(r)) r = ncclRecv(recv + std::size_t(j) * n, n, detail::nccl_type<T>(), j, c, s);
      }
      const ncclResult_t e = ncclGroupEnd();
      return detail::nccl_ok(r) ? e : r;
    });
    count(stats_->all_to_all, std::uint64_t(size_ - 1) * n * sizeof(T));
  }
  // send: packed blocks of send_counts[j] elements for rank j; recv: packed recv_counts[i] from rank i.
  template <class T>
  void all_to_all_v(const T* send, std::span<const std::size_t> send_counts, T* recv,
                    std::span<const std::size_t> recv_counts) {
    PDIFF_CHECK(int(send_counts.size()) == size_ && int(recv_counts.size()) == size_, "NcclComm: all_to_all_v on rank ",
                rank_, " needs ", size_, " send and receive counts, got ", send_counts.size(), " and ",
                recv_counts.size());
    std::uint64_t sent = 0;
    run("all_to_all_v", [&](ncclComm_t c, cudaStream_t s) {
      ncclResult_t r = ncclGroupStart();
      std::size_t so = 0, ro = 0;
      for (int j = 0; j < size_ && detail::nccl_ok(r); ++j) {
        const std::size_t sc = send_counts[std::size_t(j)], rc = recv_counts[std::size_t(j)];
        if (sc) r = ncclSend(send + so, sc, detail::nccl_type<T>(), j, c, s);
        if (rc && detail::nccl_ok(r)) r = ncclRecv(recv + ro, rc, detail::nccl_type<T>(), j, c, s);
        so += sc, ro += rc;
      }
      const ncclResult_t e = ncclGroupEnd();
      return detail::nccl_ok(r) ? e : r;
    });
    for (int j = 0; j < size_; ++j)
      if (j != rank_) sent += send_counts[std::size_t(j)] * sizeof(T);
    count(stats_->all_to_all, sent);
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    PDIFF_CHECK(root >= 0 && root < size_, "NcclComm: broadcast root ", root, " out of range for size ", size_);
    run("broadcast", [&](ncclComm_t c, cudaStream_t s) {
      return ncclBroadcast(buf, buf, n, detail::nccl_type<T>(), root, c, s);
    });
    if (rank_ == root) count(stats_->broadcast, std::uint64_t(size_ - 1) * n * sizeof(T));
    else ++stats_->calls;
  }
  template <class T>
  void send(const T* buf, std::size_t n, int peer) {
    check_peer("send", peer);
    run("send", [&](ncclComm_t c, cudaStream_t s) { return ncclSend(buf, n, detail::nccl_type<T>(), peer, c, s); });
    count(stats_->send, n * sizeof(T));
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer) {
    check_peer("recv", peer);
    run("recv", [&](ncclComm_t c, cudaStream_t s) { return ncclRecv(buf, n, detail::nccl_type<T>(), peer, c, s); });
  }
  void barrier() {
    alive("barrier");
    if (!h_->scratch) {
      CudaDeviceGuard g(h_->device);
      h_->scratch = CudaCachingAllocator::instance().allocate(sizeof(int), current_cuda_stream());
      PDIFF_CUDA_CHECK(cudaMemsetAsync(h_->scratch, 0, sizeof(int), current_cuda_stream()));
    }
    const bool was = blocking_wait_;
    blocking_wait_ = true;  // a barrier that returns early is no barrier
    try {
      run("barrier", [&](ncclComm_t c, cudaStream_t s) {
        return ncclAllReduce(h_->scratch, h_->scratch, 1, ncclInt32, ncclSum, c, s);
      });
    } catch (...) {
      blocking_wait_ = was;
      throw;
    }
    blocking_wait_ = was;
  }
  // Waits for this rank's enqueued work on the current stream (with set_blocking_wait(false)).
  void synchronize() {
    alive("synchronize");
    CudaDeviceGuard g(h_->device);
    wait("synchronize", current_cuda_stream());
  }

  // Poisons every rank of the world (their waits abort their communicators and throw) and aborts
  // this rank's communicator. Later calls on it throw.
  void abort(const std::string& why) {
    if (!h_) return;
    if (h_->world->poison(why)) {
#if defined(PDIFF_WITH_MPI)
      if (h_->world->mpi) MpiComm().abort(why);
#endif
    }
    h_->abort_comm();
  }

  // Collective: ranks with equal colour (>= 0) form a communicator, ordered by (key, rank).
  NcclComm split(int color, int key) {
    alive("split");
    PDIFF_CHECK(color >= 0, "NcclComm: split colour ", color, " must be >= 0");
    ncclComm_t child = nullptr;
    ncclConfig_t cfg = detail::nccl_nonblocking_config();
    {
      CudaDeviceGuard g(h_->device);
      const ncclResult_t r = ncclCommSplit(h_->comm, color, key, &child, &cfg);
      if (!detail::nccl_ok(r)) fail("split", detail::cat("ncclCommSplit failed: ", detail::nccl_error_text(r, h_->comm)));
      wait("split", nullptr);
    }
    NcclComm out(child, h_->device, h_->world);
    out.timeout_ = timeout_;
    out.wait("split", nullptr);
    out.query_rank();
    return out;
  }

 private:
  NcclComm(ncclComm_t c, int device, std::shared_ptr<detail::NcclWorld> world)
      : h_(std::make_shared<detail::NcclHandle>(c, device, world)), timeout_(world->timeout) {}

  static ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : ncclMax; }

  static void check_call(ncclResult_t r, ncclComm_t c, const char* call) {
    if (!detail::nccl_ok(r)) throw Error(detail::cat("NcclComm: ", call, " failed: ", detail::nccl_error_text(r, c)));
  }
  void query_rank() {
    check_call(ncclCommUserRank(h_->comm, &rank_), h_->comm, "ncclCommUserRank");
    check_call(ncclCommCount(h_->comm, &size_), h_->comm, "ncclCommCount");
  }
  void alive(const char* op) {
    PDIFF_CHECK(h_ && h_->comm, "NcclComm: ", op, " on a default-constructed or destroyed communicator");
    check_poison(op);
    PDIFF_CHECK(!h_->aborted, "NcclComm: ", op, " on rank ", rank_, " after abort()");
  }
  void check_peer(const char* op, int peer) const {
    PDIFF_CHECK(peer >= 0 && peer < size_ && peer != rank_, "NcclComm: ", op, " on rank ", rank_, " to peer ", peer,
                ": the peer must be another rank of the group of ", size_);
  }
  void count(std::uint64_t& field, std::uint64_t bytes) {
    field += bytes;
    ++stats_->calls;
  }

  // Enqueues `issue(comm, stream)` on this rank's device and current stream, then waits for it
  // (or only for the enqueueing when blocking_wait_ is off).
  template <class Issue>
  void run(const char* op, Issue issue) {
    alive(op);
    CudaDeviceGuard g(h_->device);
    const cudaStream_t s = current_cuda_stream();
    const ncclResult_t r = issue(h_->comm, s);
    if (!detail::nccl_ok(r)) fail(op, detail::cat("NCCL error: ", detail::nccl_error_text(r, h_->comm)));
    wait(op, blocking_wait_ ? s : nullptr);
  }

  // Polls until the communicator has no operation in progress and, if `s` is given, the stream is
  // idle. Throws (after abort) on poison, an NCCL or CUDA error, or the timeout.
  void wait(const char* op, cudaStream_t s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (int spins = 0;; ++spins) {
      check_poison(op);
      ncclResult_t st = ncclSuccess;
      const ncclResult_t q = ncclCommGetAsyncError(h_->comm, &st);
      if (q != ncclSuccess) st = q;
      if (st != ncclSuccess && st != ncclInProgress)
        fail(op, detail::cat("NCCL error: ", detail::nccl_error_text(st, h_->comm)));
      bool done = st == ncclSuccess;
      if (done && s) {
        const cudaError_t e = cudaStreamQuery(s);
        if (e != cudaSuccess && e != cudaErrorNotReady) {
          cudaGetLastError();
          fail(op, detail::cat("CUDA error on the stream: ", cudaGetErrorString(e)));
        }
        done = e == cudaSuccess;
      }
      if (done) return;
      if (std::chrono::steady_clock::now() > deadline)
        fail(op, detail::cat("timed out after ", timeout_.count(), " ms"));
      if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  // Throws if another rank failed; first aborts this rank's communicator so its kernels end.
  void check_poison(const char* op) {
    detail::NcclWorld& w = *h_->world;
#if defined(PDIFF_WITH_MPI)
    if (w.mpi && !w.failed.load()) poll_mpi_poison();
#endif
    if (!w.failed.load()) return;
    h_->abort_comm();
    throw Error(detail::cat("NcclComm: ", op, " on rank ", rank_, " aborted: ", w.why()));
  }
#if defined(PDIFF_WITH_MPI)
  // A failed process announces itself on MpiComm's poison channel (MpiComm::abort).
  void poll_mpi_poison() {
    auto& rt = detail::MpiRuntime::get();
    if (rt.failed) {
      h_->world->poison(detail::cat("this process failed: ", rt.reason));
      return;
    }
    if (auto p = rt.take_poison()) h_->world->poison(detail::cat("process rank ", p->first, " failed: ", p->second));
  }
#endif

  [[noreturn]] void fail(const char* op, const std::string& what) {
    const std::string why = detail::cat("NcclComm: ", op, " on rank ", rank_, " of ", size_, " (device ",
                                        h_->device, "): ", what);
    abort(why);
    throw Error(why);
  }

  std::shared_ptr<detail::NcclHandle> h_;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_{60'000};
  bool blocking_wait_ = true;
  std::shared_ptr<CommStats> stats_ = std::make_shared<CommStats>();
};

static_assert(Communicator<NcclComm>);

}  // namespace pdiff
#endif
