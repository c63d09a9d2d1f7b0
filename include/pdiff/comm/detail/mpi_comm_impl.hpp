// pdiff/comm/detail/mpi_comm_impl.hpp — MpiComm: CPU ranks as processes (mpirun -np N), on one
// machine or many. Included by comm/mpi_comm.hpp only when PDIFF_WITH_MPI.
//
// | collective                 | MPI                                                               |
// |----------------------------|-------------------------------------------------------------------|
// | all_reduce                 | MPI_Ialltoallv: rank r gets slice r of every buffer, reduces it in rank order, MPI_Iallgatherv shares the slices: 2·(P−1)/P·n sent, bit-identical on every rank (bf16/f16 reduced in float) |
// | reduce_scatter             | MPI_Ialltoall: rank r gets block r of every buffer and reduces it in rank order |
// | all_gather, all_to_all(_v) | MPI_Iallgather, MPI_Ialltoall(v) on bytes                         |
// | broadcast, barrier         | MPI_Ibcast, MPI_Ibarrier                                          |
// | send / recv                | MPI_Isend / MPI_Irecv                                             |
// | split                      | MPI_Ibarrier (polled: a failed peer is reported, not waited for), then MPI_Comm_split |
// Every wait polls the request, a poison channel and the clock: abort(reason) sends the reason to
// every world rank on a dedicated communicator; a poller that sees it throws pdiff::Error naming the
// failed rank, and one that waits past CommOptions::timeout throws and poisons the others. After
// such an error MPI is not usable for further collectives; launch() reports it and the process exits.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/detail/reduce.hpp"
#include "pdiff/core/error.hpp"

namespace pdiff {

namespace detail {
constexpr int kPoisonTag = 7001, kSendTag = 7002;
// Process-wide MPI state: initialised once, finalised at exit unless a failure left requests pending.
struct MpiRuntime {
  MPI_Comm control = MPI_COMM_NULL;  // the poison channel
  bool failed = false;
  std::string reason;
  std::vector<std::unique_ptr<std::string>> outgoing;  // poison payloads kept alive until exit
  std::vector<MPI_Request> outgoing_req;
  std::vector<std::shared_ptr<void>> graveyard;  // buffers of collectives abandoned by a failure
  static MpiRuntime& get() {
    static MpiRuntime rt;
    return rt;
  }
  void init() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit([] {
        int fin = 0;
        MPI_Finalized(&fin);
        // after a failure collectives stay pending forever; finalising would progress them into
        // buffers that no longer exist, so the process ends without MPI_Finalize
        if (!fin && !get().failed) MPI_Finalize();
      });
    }
    if (control == MPI_COMM_NULL) {
      // A peer that failed leaves collectives unmatched; MPI then reports an error (e.g. a truncated
      // message) that must become a pdiff::Error naming the failure, not abort the process.
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
      MPI_Comm_dup(MPI_COMM_WORLD, &control);
      MPI_Comm_set_errhandler(control, MPI_ERRORS_RETURN);
    }
  }
  // The poison message of a failed rank, received if one has arrived: (its world rank, the reason).
  // Marks this process failed.
  std::optional<std::pair<int, std::string>> take_poison() {
    if (control == MPI_COMM_NULL) return std::nullopt;
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kPoisonTag, control, &flag, &st);
    if (!flag) return std::nullopt;
    int len = 0;
    MPI_Get_count(&st, MPI_CHAR, &len);
    std::string why(std::size_t(len), '\0');
    MPI_Recv(why.data(), len, MPI_CHAR, st.MPI_SOURCE, kPoisonTag, control, MPI_STATUS_IGNORE);
    failed = true;
    reason = why;
    return std::pair{st.MPI_SOURCE, std::move(why)};
  }
};
}  // namespace detail

class MpiComm {
 public:
  MpiComm() = default;

  static MpiComm world(CommOptions opts = {}) {
    detail::MpiRuntime::get().init();
    MpiComm c;
    c.comm_ = MPI_COMM_WORLD;
    c.timeout_ = opts.timeout;
    MPI_Comm_rank(c.comm_, &c.rank_);
    MPI_Comm_size(c.comm_, &c.size_);
    return c;
  }
  static bool launched_by_mpirun() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
      if (std::getenv(v)) return true;
    return false;
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  CommStats stats() const { return *stats_; }

  // buf: (n) in place; slice q = [n·q/P, n·(q+1)/P) is reduced by rank q.
  template <class T>
  void all_reduce(T* buf, std::size_t n, ReduceOp op) {
    const auto p = std::size_t(size_), me = std::size_t(rank_);
    const std::size_t lo = n * me / p, m = n * (me + 1) / p - lo;
    std::vector<int> cnt(p), dsp(p), rcnt(p), rdsp(p);  // bytes: slices of buf; m-element parts
    for (std::size_t q = 0; q < p; ++q) {
      cnt[q] = checked_int((n * (q + 1) / p - n * q / p) * sizeof(T), "all_reduce");
      dsp[q] = checked_int(n * q / p * sizeof(T), "all_reduce");
      rcnt[q] = checked_int(m * sizeof(T), "all_reduce");
      rdsp[q] = checked_int(q * m * sizeof(T), "all_reduce");
    }
    auto parts = std::make_shared<std::vector<T>>(m * p);  // (P, m): slice `me` of every rank's buf
    MPI_Request req;
    start("all_reduce", MPI_Ialltoallv(buf, cnt.data(), dsp.data(), MPI_BYTE, parts->data(), rcnt.data(), rdsp.data(), MPI_BYTE, comm_,
                   &req));
    wait(req, "all_reduce", parts);
    std::vector<const T*> src(p);
    for (std::size_t q = 0; q < p; ++q) src[q] = parts->data() + q * m;
    detail::reduce_into(buf + lo, src.data(), size_, 0, m, op);
    start("all_reduce", MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_BYTE, buf, cnt.data(), dsp.data(), MPI_BYTE, comm_, &req));
    wait(req, "all_reduce");
    stats_->all_reduce += detail::ring_all_reduce_bytes(n, sizeof(T), size_);
    ++stats_->calls;
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    gather_bytes("all_gather", send, recv, n * sizeof(T));
    stats_->all_gather += std::uint64_t(size_ - 1) * n * sizeof(T);
    ++stats_->calls;
  }
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, ReduceOp op) {
    // send: (P, n) blocks; parts: (P, n), block `rank` of every rank's send
    auto parts = std::make_shared<std::vector<T>>(n * std::size_t(size_));
    const int b = checked_int(n * sizeof(T), "reduce_scatter");
    MPI_Request req;
    start("reduce_scatter", MPI_Ialltoall(send, b, MPI_BYTE, parts->data(), b, MPI_BYTE, comm_, &req));
    wait(req, "reduce_scatter", parts);
    std::vector<const T*> src(static_cast<std::size_t>(size_));
    for (int r = 0; r < size_; ++r) src[std::size_t(r)] = parts->data() + std::size_t(r) * n;
    detail::reduce_into(recv, src.data(), size_, 0, n, op);
    stats_->reduce_scatter += std::uint64_t(size_ - 1) * n * sizeof(T);
    ++stats_->calls;
  }
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    const int b = checked_int(n * sizeof(T), "all_to_all");
    MPI_Request req;
    start("all_to_all", MPI_Ialltoall(send, b, MPI_BYTE, recv, b, MPI_BYTE, comm_, &req));
    wait(req, "all_to_all");
    stats_->all_to_all += std::uint64_t(size_ - 1) * n * sizeof(T);
    ++stats_->calls;
  }
  template <class T>
  void all_to_all_v(const T* send, std::span<const std::size_t> sc, T* recv, std::span<const std::size_t> rc) {
    PDIFF_CHECK(int(sc.size()) == size_ && int(rc.size()) == size_, "MpiComm: all_to_all_v on rank ", rank_, " needs ",
                size_, " send and receive counts");
    std::vector<int> s(static_cast<std::size_t>(size_)), sd(s.size()), r(s.size()), rd(s.size());
    int so = 0, ro = 0;
    std::uint64_t sent = 0;
    for (int k = 0; k < size_; ++k) {
      s[std::size_t(k)] = checked_int(sc[std::size_t(k)] * sizeof(T), "all_to_all_v");
      r[std::size_t(k)] = checked_int(rc[std::size_t(k)] * sizeof(T), "all_to_all_v");
      sd[std::size_t(k)] = so, rd[std::size_t(k)] = ro;
      so += s[std::size_t(k)], ro += r[std::size_t(k)];
      if (k != rank_) sent += std::uint64_t(s[std::size_t(k)]);
    }
    MPI_Request req;
    start("all_to_all_v", MPI_Ialltoallv(send, s.data(), sd.data(), MPI_BYTE, recv, r.data(), rd.data(), MPI_BYTE, comm_, &req));
    wait(req, "all_to_all_v");
    stats_->all_to_all += sent;
    ++stats_->calls;
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    PDIFF_CHECK(root >= 0 && root < size_, "MpiComm: broadcast root ", root, " out of range for size ", size_);
    MPI_Request req;
    start("broadcast", MPI_Ibcast(buf, checked_int(n * sizeof(T), "broadcast"), MPI_BYTE, root, comm_, &req));
    wait(req, "broadcast");
    if (rank_ == root) stats_->broadcast += std::uint64_t(size_ - 1) * n * sizeof(T);
    ++stats_->calls;
  }
  template <class T>
  void send(const T* buf, std::size_t n, int peer) {
    MPI_Request req;
    start("send", MPI_Isend(buf, checked_int(n * sizeof(T), "send"), MPI_BYTE, peer, detail::kSendTag, comm_, &req));
    wait(req, "send");
    stats_->send += n * sizeof(T);
    ++stats_->calls;
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer) {
    MPI_Request req;
    start("recv", MPI_Irecv(buf, checked_int(n * sizeof(T), "recv"), MPI_BYTE, peer, detail::kSendTag, comm_, &req));
    wait(req, "recv");
  }
  void barrier() {
    MPI_Request req;
    start("barrier", MPI_Ibarrier(comm_, &req));
    wait(req, "barrier");
  }
  // Tells every rank of the world that this one failed; their waits throw.
  void abort(const std::string& why) {
    auto& rt = detail::MpiRuntime::get();
    if (rt.failed) return;
    rt.failed = true;
    rt.reason = why;
    int wr = 0, ws = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    MPI_Comm_size(MPI_COMM_WORLD, &ws);
    rt.outgoing.push_back(std::make_unique<std::string>(why));
    for (int r = 0; r < ws; ++r) {
      if (r == wr) continue;
      MPI_Request req;
      MPI_Isend(rt.outgoing.back()->data(), int(rt.outgoing.back()->size()), MPI_CHAR, r, detail::kPoisonTag,
                rt.control, &req);
      rt.outgoing_req.push_back(req);
    }
  }
  // Collective. MPI_Comm_split blocks, so a polled barrier first makes sure every rank is there
  // (a failed or absent peer ends in an Error instead of a hang).
  MpiComm split(int color, int key) {
    MPI_Request req;
    start("split", MPI_Ibarrier(comm_, &req));
    wait(req, "split");
    MpiComm c;
    start("split", MPI_Comm_split(comm_, color, key, &c.comm_));
    MPI_Comm_set_errhandler(c.comm_, MPI_ERRORS_RETURN);
    c.timeout_ = timeout_;
    MPI_Comm_rank(c.comm_, &c.rank_);
    MPI_Comm_size(c.comm_, &c.size_);
    return c;
  }

 private:
  static int checked_int(std::size_t bytes, const char* op) {
    PDIFF_CHECK(bytes <= std::size_t(std::numeric_limits<int>::max()), "MpiComm: ", op, " of ", bytes,
                " bytes exceeds MPI's int counts");
    return int(bytes);
  }
  void gather_bytes(const char* op, const void* send, void* recv, std::size_t bytes,
                    std::shared_ptr<void> keep = nullptr) {
    MPI_Request req;
    const int b = checked_int(bytes, op);
    start(op, MPI_Iallgather(send, b, MPI_BYTE, recv, b, MPI_BYTE, comm_, &req));
    wait(req, op, std::move(keep));
  }
  // Polls the request, the poison channel and the clock. On failure `keep` (an internal buffer the
  // pending request may still write) is kept alive until the process ends.
  void wait(MPI_Request& req, const char* op, std::shared_ptr<void> keep = nullptr) {
    try {
      poll(req, op);
    } catch (...) {
      if (keep) detail::MpiRuntime::get().graveyard.push_back(std::move(keep));
      throw;
    }
  }
  void poll(MPI_Request& req, const char* op) {
    auto& rt = detail::MpiRuntime::get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (int spins = 0;; ++spins) {
      check_poison(op);
      int done = 0;
      if (const int rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE); rc != MPI_SUCCESS) mpi_failed(op, rc);
      if (done) return;
      if (rt.failed) throw Error(detail::cat("MpiComm: ", op, " on rank ", rank_, " after a failure: ", rt.reason));
      if (std::chrono::steady_clock::now() > deadline) {
        const std::string why = detail::cat("MpiComm: ", op, " on rank ", rank_, " of ", size_, " timed out after ",
                                            timeout_.count(), " ms");
        abort(why);
        throw Error(why);
      }
      if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  // A collective that cannot even start (MPI returned an error) fails like one that failed later.
  void start(const char* op, int rc) {
    if (rc != MPI_SUCCESS) mpi_failed(op, rc);
  }
  // Throws the reason a failed rank sent on the poison channel, if one arrived.
  void check_poison(const char* op) {
    if (auto p = detail::MpiRuntime::get().take_poison())
      throw Error(detail::cat("MpiComm: ", op, " on rank ", rank_, " aborted: rank ", p->first, " failed: ", p->second));
  }
  // MPI reported an error, usually because a failed peer left this collective unmatched: its poison
  // message explains it better, so wait briefly for one before reporting MPI's own error.
  [[noreturn]] void mpi_failed(const char* op, int rc) {
    const auto grace = std::chrono::steady_clock::now() + std::min(timeout_, std::chrono::milliseconds(2000));
    while (std::chrono::steady_clock::now() < grace) {
      check_poison(op);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    const std::string why = detail::cat("MpiComm: ", op, " on rank ", rank_, " failed in MPI: ", std::string(msg, std::size_t(len)));
    abort(why);
    throw Error(why);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_{60'000};
  std::shared_ptr<CommStats> stats_ = std::make_shared<CommStats>();
};

static_assert(Communicator<MpiComm>);

}  // namespace pdiff
