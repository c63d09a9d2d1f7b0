// pdiff/core/byte_counter.hpp — ByteCounter: live and peak bytes (the allocator high-water mark),
// and one counter per thread and backend for per-rank accounting.
//
// | call                              | counts                                                     |
// |-----------------------------------|------------------------------------------------------------|
// | ByteCounter::add / sub            | bytes taken / given back; peak = the most live ever held  |
// | thread_byte_counter<Backend>()    | the calling thread's counter for that backend; with thread ranks (launch<L>) one thread is one rank |
// Thread counters live as long as the process: a block may be freed after its thread ended, and
// is credited back to the counter it was charged to (allocators keep that pointer per block).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>

namespace pdiff::detail {

struct ByteCounter {
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> peak{0};
  void add(std::size_t bytes) {
    const std::size_t now = live.fetch_add(bytes) + bytes;
    std::size_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {}
  }
  void sub(std::size_t bytes) { live.fetch_sub(bytes); }
  void reset_peak() { peak.store(live.load()); }
};

template <class Backend>
ByteCounter& thread_byte_counter() {
  static std::mutex mu;
  // never destroyed: tensors of static objects are freed after function-local statics die
  static auto& all = *new std::deque<ByteCounter>;
  thread_local ByteCounter* mine = [] {
    std::lock_guard lock(mu);
    return &all.emplace_back();
  }();
  return *mine;
}

}  // namespace pdiff::detail
