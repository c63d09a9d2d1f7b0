// pdiff/comm/detail/thread_group.hpp — the shared state behind ThreadComm: one World per
// create_world() (the failure flag, shared by every sub-group), one Group per communicator.
//
// A collective is two rendezvous: `arrive` (every rank has posted its buffer: peers may read it)
// and `depart` (every rank has finished reading: buffers may change). Both wait on the world's
// condition variable with the timeout; abort() sets the world's failure and wakes everyone.
// `arrive` gives up on a failure; `depart` does not: once everyone arrived, peers may be reading
// (or, for all_reduce, writing) this rank's buffers, so it returns only when all have departed,
// which happens promptly because the step between the two does not wait on anyone.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pdiff/core/error.hpp"

namespace pdiff::detail {

struct ThreadWorld {
  std::mutex mu;
  std::condition_variable cv;
  bool failed = false;
  std::string reason;
  std::chrono::milliseconds timeout{60'000};
};

struct ThreadSlot {
  const void* ptr = nullptr;
  std::size_t count = 0;          // elements (equal-count collectives) or 0
  const std::size_t* counts = nullptr;  // all_to_all_v send counts
  const std::size_t* rcounts = nullptr; // all_to_all_v receive counts
  int op = 0;                     // which collective, to detect mismatched calls
  std::size_t elem = 0;
  long arrived_gen = -1;
  std::shared_ptr<void> child;    // split: the new group, published by its leader
  int color = 0, key = 0;
};

struct ThreadGroup {
  static constexpr int kSpins = 256;
  int size = 0;
  std::shared_ptr<ThreadWorld> world;
  std::vector<ThreadSlot> slots;
  long gen = 0;     // collectives completed
  int arrived = 0, departed = 0;
  bool open = false;  // all arrived for the current generation
  std::string verdict;  // why the posts of the open generation do not match; empty when they do
  std::map<std::pair<int, int>, std::deque<std::vector<unsigned char>>> mail;  // (src, dst) → messages

  ThreadGroup(int n, std::shared_ptr<ThreadWorld> w) : size(n), world(std::move(w)), slots(std::size_t(n)) {}

  [[noreturn]] void fail_locked(const std::string& what) {
    if (!world->failed) {
      world->failed = true;
      world->reason = what;
    }
    world->cv.notify_all();
    throw Error(what);
  }
  void check_failed_locked(const char* op, int rank) {
    if (world->failed)
      throw Error(cat("ThreadComm: ", op, " on rank ", rank, " aborted: ", world->reason));
  }
  template <class Pred>
  void wait_locked(std::unique_lock<std::mutex>& lk, Pred ready, const char* op, int rank, bool honour_failure = true) {
    // Peers usually arrive within microseconds: poll a little, yielding the core, before sleeping on
    // the condition variable (a wake-up through it costs tens of microseconds).
    for (int i = 0; i < kSpins && !ready(); ++i) {
      if (honour_failure) check_failed_locked(op, rank);
      lk.unlock();
      std::this_thread::yield();
      lk.lock();
    }
    const auto deadline = std::chrono::steady_clock::now() + world->timeout;
    while (!ready()) {
      if (honour_failure) check_failed_locked(op, rank);
      if (world->cv.wait_until(lk, deadline) == std::cv_status::timeout && !ready()) {
        if (honour_failure) check_failed_locked(op, rank);
        std::string missing;
        for (int r = 0; r < size; ++r)
          if (slots[std::size_t(r)].arrived_gen != gen) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        fail_locked(cat("ThreadComm: ", op, " on rank ", rank, " of ", size, " timed out after ",
                        world->timeout.count(), " ms waiting for rank(s) ", missing.empty() ? "?" : missing));
      }
    }
    // ready: the step completed, even if a failure was flagged meanwhile (the next call reports it)
  }

  // Run by the last rank to arrive, before any rank may leave: the posts must describe the same
  // collective with the same element size and count, and for all_to_all_v what s sends to d must be
  // what d expects from s.
  std::string check_posts(const char* op) const {
    const ThreadSlot& first = slots[0];
    for (int r = 1; r < size; ++r) {
      const ThreadSlot& o = slots[std::size_t(r)];
      if (o.op != first.op || o.elem != first.elem || (first.counts == nullptr && o.count != first.count))
        return cat("ThreadComm: ", op, ": rank ", r, " called a different collective or count than rank 0 (", o.count,
                   " elements of ", o.elem, " bytes vs ", first.count, " of ", first.elem,
                   "); every rank of a group calls the same collectives in the same order");
    }
    if (first.counts != nullptr)
      for (int src = 0; src < size; ++src)
        for (int dst = 0; dst < size; ++dst) {
          const std::size_t sent = slots[std::size_t(src)].counts[dst], want = slots[std::size_t(dst)].rcounts[src];
          if (sent != want)
            return cat("ThreadComm: all_to_all_v: rank ", src, " sends ", sent, " elements to rank ", dst,
                       " which expects ", want, "; send_counts[d] of rank s must equal recv_counts[s] of rank d");
        }
    return {};
  }

  // Posts this rank's slot and waits until every rank has. Returns the generation.
  long arrive(int rank, const ThreadSlot& mine, const char* op) {
    std::unique_lock lk(world->mu);
    check_failed_locked(op, rank);
    const long g = gen;
    // a rank may arrive for generation g only after everyone departed g − 1
    wait_locked(lk, [&] { return !open || gen != g; }, op, rank);
    ThreadSlot& s = slots[std::size_t(rank)];
    auto child = s.child;
    s = mine;
    s.child = child;
    s.arrived_gen = gen;
    if (++arrived == size) {
      verdict = check_posts(op);  // the others still wait, so their posted count arrays are alive
      open = true;
      world->cv.notify_all();
    }
    wait_locked(lk, [&] { return open; }, op, rank);
    if (!verdict.empty()) fail_locked(verdict);
    return gen;
  }
  // Waits until every rank has finished reading the posted buffers.
  void depart(int rank, const char* op) {
    std::unique_lock lk(world->mu);
    const long g = gen;
    if (++departed == size) {
      arrived = departed = 0;
      open = false;
      verdict.clear();
      ++gen;
      world->cv.notify_all();
      return;
    }
    wait_locked(lk, [&] { return gen != g; }, op, rank, /*honour_failure=*/false);
  }

  void send(int src, int dst, const void* p, std::size_t bytes) {
    std::lock_guard lk(world->mu);
    check_failed_locked("send", src);
    auto* b = static_cast<const unsigned char*>(p);
    mail[{src, dst}].emplace_back(b, b + bytes);
    world->cv.notify_all();
  }
  void recv(int src, int dst, void* p, std::size_t bytes) {
    std::unique_lock lk(world->mu);
    auto& q = mail[{src, dst}];
    wait_locked(lk, [&] { return !q.empty(); }, "recv", dst);
    if (q.front().size() != bytes)
      fail_locked(cat("ThreadComm: recv on rank ", dst, " expected ", bytes, " bytes from rank ", src, ", the message has ",
                      q.front().size()));
    std::memcpy(p, q.front().data(), bytes);
    q.pop_front();
  }
  void abort(const std::string& why) {
    std::lock_guard lk(world->mu);
    if (!world->failed) {
      world->failed = true;
      world->reason = why;
    }
    world->cv.notify_all();
  }
};

}  // namespace pdiff::detail
