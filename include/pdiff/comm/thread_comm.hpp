// pdiff/comm/thread_comm.hpp — ThreadComm: ranks are threads of one process sharing memory.
//
// | collective      | how                                                                    |
// |-----------------|------------------------------------------------------------------------|
// | all_reduce      | rank r reduces slice r of every buffer in rank order and writes it to all (bit-identical) |
// | all_gather      | every rank copies every posted buffer                                  |
// | reduce_scatter  | every rank reduces its block of every posted buffer                    |
// | all_to_all(_v)  | every rank copies its block of every posted buffer                     |
// | broadcast       | every rank copies the root's buffer                                    |
// | send / recv     | buffered mailbox per (src, dst), messages matched in order             |
// | split           | leaders create the sub-groups, members pick theirs up                  |
// Host pointers only (device tensors go through a device communicator). A rank that calls abort()
// or throws in launch() poisons the world: every pending or later call of every rank throws.
// Waits end after CommOptions::timeout with an error naming the ranks that did not arrive.
#pragma once

#include <algorithm>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/comm/detail/reduce.hpp"
#include "pdiff/comm/detail/thread_group.hpp"

namespace pdiff {

class ThreadComm {
 public:
  ThreadComm() = default;

  static std::vector<ThreadComm> create_world(int size, CommOptions opts = {}) {
    PDIFF_CHECK(size >= 1, "ThreadComm: world size ", size, " must be >= 1");
    auto world = std::make_shared<detail::ThreadWorld>();
    world->timeout = opts.timeout;
    auto group = std::make_shared<detail::ThreadGroup>(size, world);
    std::vector<ThreadComm> comms;
    for (int r = 0; r < size; ++r) comms.push_back(ThreadComm(group, r));
    return comms;
  }

  int rank() const { return rank_; }
  int size() const { return g_ ? g_->size : 1; }
  CommStats stats() const { return stats_ ? *stats_ : CommStats{}; }

  // In place, no copy: slice r = [n·r/P, n·(r+1)/P) of every buffer is read and written only by
  // rank r (reduce in rank order into its own buffer, then copy to the peers), so slices never race.
  template <class T>
  void all_reduce(T* buf, std::size_t n, ReduceOp op) {
    collective<T>("all_reduce", 1, buf, n, nullptr, [&](auto peer) {
      const int p = size();
      const std::size_t lo = n * std::size_t(rank_) / std::size_t(p), hi = n * std::size_t(rank_ + 1) / std::size_t(p);
      std::vector<const T*> src(static_cast<std::size_t>(p));
      for (int r = 0; r < p; ++r) src[std::size_t(r)] = peer(r);
      detail::reduce_into(buf + lo, src.data(), p, lo, hi - lo, op);
      for (int r = 0; r < p; ++r)
        if (r != rank_) std::copy(buf + lo, buf + hi, const_cast<T*>(peer(r)) + lo);
    });
    count(stats_->all_reduce, detail::ring_all_reduce_bytes(n, sizeof(T), size()));
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    collective<T>("all_gather", 2, send, n, nullptr, [&](auto peer) {
      for (int r = 0; r < size(); ++r) std::copy_n(peer(r), n, recv + std::size_t(r) * n);
    });
    count(stats_->all_gather, std::uint64_t(size() - 1) * n * sizeof(T));
  }
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, ReduceOp op) {
    collective<T>("reduce_scatter", 3, send, n, nullptr, [&](auto peer) {
      std::vector<const T*> src(static_cast<std::size_t>(size()));
      for (int r = 0; r < size(); ++r) src[std::size_t(r)] = peer(r);
      detail::reduce_into(recv, src.data(), size(), std::size_t(rank_) * n, n, op);
    });
    count(stats_->reduce_scatter, std::uint64_t(size() - 1) * n * sizeof(T));
  }
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    collective<T>("all_to_all", 4, send, n, nullptr, [&](auto peer) {
      for (int r = 0; r < size(); ++r) std::copy_n(peer(r) + std::size_t(rank_) * n, n, recv + std::size_t(r) * n);
    });
    count(stats_->all_to_all, std::uint64_t(size() - 1) * n * sizeof(T));
  }
  template <class T>
  void all_to_all_v(const T* send, std::span<const std::size_t> send_counts, T* recv,
                    std::span<const std::size_t> recv_counts) {
    PDIFF_CHECK(int(send_counts.size()) == size() && int(recv_counts.size()) == size(), "ThreadComm: all_to_all_v on rank ",
                rank_, " needs ", size(), " send and receive counts, got ", send_counts.size(), " and ", recv_counts.size());
    std::vector<std::size_t> sc(send_counts.begin(), send_counts.end()), rc(recv_counts.begin(), recv_counts.end());
    collective<T>("all_to_all_v", 5, send, 0, sc.data(), [&](auto peer) {
      std::size_t at = 0;
      for (int r = 0; r < size(); ++r) {
        const std::size_t* theirs = g_->slots[std::size_t(r)].counts;  // equal to rc, checked by arrive
        const std::size_t off = std::accumulate(theirs, theirs + rank_, std::size_t(0));
        std::copy_n(peer(r) + off, theirs[rank_], recv + at);
        at += theirs[rank_];
      }
    }, rc.data());
    std::uint64_t sent = 0;
    for (int r = 0; r < size(); ++r)
      if (r != rank_) sent += sc[std::size_t(r)] * sizeof(T);
    count(stats_->all_to_all, sent);
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    PDIFF_CHECK(root >= 0 && root < size(), "ThreadComm: broadcast root ", root, " out of range for size ", size());
    collective<T>("broadcast", 6, buf, n, nullptr, [&](auto peer) {
      if (rank_ != root) std::copy_n(peer(root), n, buf);
    });
    if (rank_ == root) count(stats_->broadcast, std::uint64_t(size() - 1) * n * sizeof(T));
  }
  template <class T>
  void send(const T* buf, std::size_t n, int peer) {
    check_peer("send", peer);
    g_->send(rank_, peer, buf, n * sizeof(T));
    count(stats_->send, n * sizeof(T));
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer) {
    check_peer("recv", peer);
    g_->recv(peer, rank_, buf, n * sizeof(T));
  }
  void barrier() {
    collective<unsigned char>("barrier", 7, nullptr, 0, nullptr, [](auto) {});
  }
  void abort(const std::string& why) {
    if (g_) g_->abort(why);
  }

  // Collective: ranks with equal colour form a group, ordered by (key, rank).
  ThreadComm split(int color, int key) {
    detail::ThreadSlot mine;
    mine.op = 8;
    mine.color = color;
    mine.key = key;
    g_->arrive(rank_, mine, "split");
    std::vector<std::pair<int, int>> members;  // (key, old rank)
    for (int r = 0; r < size(); ++r)
      if (g_->slots[std::size_t(r)].color == color) members.push_back({g_->slots[std::size_t(r)].key, r});
    std::sort(members.begin(), members.end());
    const int leader = members.front().second;
    int my_new = 0;
    for (std::size_t i = 0; i < members.size(); ++i)
      if (members[i].second == rank_) my_new = int(i);
    if (rank_ == leader) {
      auto child = std::make_shared<detail::ThreadGroup>(int(members.size()), g_->world);
      std::lock_guard lk(g_->world->mu);
      g_->slots[std::size_t(rank_)].child = child;
    }
    g_->depart(rank_, "split");
    barrier();  // every leader has published its group
    std::shared_ptr<void> child;
    {
      std::lock_guard lk(g_->world->mu);
      child = g_->slots[std::size_t(leader)].child;
    }
    barrier();  // every member has picked its group up before a leader's slot can change
    return ThreadComm(std::static_pointer_cast<detail::ThreadGroup>(child), my_new);
  }

 private:
  ThreadComm(std::shared_ptr<detail::ThreadGroup> g, int r)
      : g_(std::move(g)), rank_(r), stats_(std::make_shared<CommStats>()) {}

  template <class T, class Body>
  void collective(const char* op, int tag, const T* mine, std::size_t n, const std::size_t* counts, Body body,
                  const std::size_t* rcounts = nullptr) {
    PDIFF_CHECK(g_, "ThreadComm: ", op, " on a default-constructed communicator");
    detail::ThreadSlot s;
    s.ptr = mine;
    s.count = n;
    s.counts = counts;
    s.rcounts = rcounts;
    s.op = tag;
    s.elem = sizeof(T);
    g_->arrive(rank_, s, op);
    try {
      body([&](int r) { return static_cast<const T*>(g_->slots[std::size_t(r)].ptr); });
    } catch (const std::exception& e) {  // e.g. bad_alloc: poison, and still depart, peers use our buffers
      g_->abort(e.what());
      g_->depart(rank_, op);
      throw;
    }
    g_->depart(rank_, op);
  }
  void check_peer(const char* op, int peer) const {
    PDIFF_CHECK(g_ && peer >= 0 && peer < size() && peer != rank_, "ThreadComm: ", op, " on rank ", rank_,
                " to peer ", peer, ": the peer must be another rank of the group of ", size());
  }
  void count(std::uint64_t& field, std::uint64_t bytes) {
    field += bytes;
    ++stats_->calls;
  }

  std::shared_ptr<detail::ThreadGroup> g_;
  int rank_ = 0;
  std::shared_ptr<CommStats> stats_ = std::make_shared<CommStats>();
};

static_assert(Communicator<ThreadComm>);

}  // namespace pdiff
