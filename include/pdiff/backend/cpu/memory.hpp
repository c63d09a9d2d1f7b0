// pdiff/backend/cpu/memory.hpp — memory<OnCpu>: 64-byte aligned heap memory with live/peak byte
// counters for the whole process and for the allocating thread (the CPU side of the allocator
// high-water mark).
//
// | counter                               | counts                                                  |
// |---------------------------------------|---------------------------------------------------------|
// | live_bytes / peak_bytes / reset_peak  | every CPU tensor of the process                         |
// | thread_live_bytes / thread_peak_bytes | tensors allocated by the calling thread; with thread ranks (launch<L>) one thread is one rank, so this is the per-rank peak |
// Each block carries a 64-byte header naming the thread counter it was charged to, so a tensor
// freed by another thread (a result handed back to the caller) is credited to the right one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/byte_counter.hpp"
#include "pdiff/core/memory.hpp"
#include "pdiff/core/rank_note.hpp"

namespace pdiff {

namespace detail {
inline ByteCounter& cpu_memory_stats() {
  static auto& s = *new ByteCounter;  // never destroyed, like the thread counters
  return s;
}
}  // namespace detail

template <>
struct memory<OnCpu> {
  static constexpr std::size_t alignment = 64;
  static void* allocate(std::size_t bytes) {
    auto* owner = &detail::thread_byte_counter<OnCpu>();
    std::byte* base = nullptr;
    try {
      if (bytes > SIZE_MAX - alignment) throw std::bad_alloc();  // the header would wrap the size
      base = static_cast<std::byte*>(::operator new(bytes + alignment, std::align_val_t(alignment)));
    } catch (const std::bad_alloc&) {
      throw Error(out_of_memory_message("memory<OnCpu>", std::int64_t(bytes), "the host has no memory left",
                                        std::int64_t(owner->live.load()),
                                        detail::cat("the process ", detail::gib_text(std::int64_t(detail::cpu_memory_stats().live.load())), " live")));
    }
    std::memcpy(base, &owner, sizeof owner);
    owner->add(bytes);
    detail::cpu_memory_stats().add(bytes);
    return base + alignment;
  }
  static void deallocate(void* p, std::size_t bytes) {
    auto* base = static_cast<std::byte*>(p) - alignment;
    detail::ByteCounter* owner = nullptr;
    std::memcpy(&owner, base, sizeof owner);
    owner->sub(bytes);
    detail::cpu_memory_stats().sub(bytes);
    ::operator delete(base, std::align_val_t(alignment));
  }
  static void zero(void* p, std::size_t bytes) { std::memset(p, 0, bytes); }
  static void to_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void from_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void copy(void* dst, const void* src, std::size_t bytes) { std::memmove(dst, src, bytes); }
  // `height` rows of `width` bytes, rows `dpitch`/`spitch` bytes apart (cudaMemcpy2D's contract).
  static void copy_2d(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                      std::size_t height) {
    auto* d = static_cast<std::byte*>(dst);
    auto* s = static_cast<const std::byte*>(src);
    for (std::size_t r = 0; r < height; ++r) std::memcpy(d + r * dpitch, s + r * spitch, width);
  }

  // Bytes held by CPU tensors in this process now, and the most ever held (since reset_peak()).
  static std::size_t live_bytes() { return detail::cpu_memory_stats().live.load(); }
  static std::size_t peak_bytes() { return detail::cpu_memory_stats().peak.load(); }
  static void reset_peak() { detail::cpu_memory_stats().reset_peak(); }
  // The same for the blocks the calling thread allocated (one rank under thread launch).
  static std::size_t thread_live_bytes() { return detail::thread_byte_counter<OnCpu>().live.load(); }
  static std::size_t thread_peak_bytes() { return detail::thread_byte_counter<OnCpu>().peak.load(); }
  static void reset_thread_peak() { detail::thread_byte_counter<OnCpu>().reset_peak(); }
};

}  // namespace pdiff
