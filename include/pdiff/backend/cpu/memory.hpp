// pdiff/backend/cpu/memory.hpp — memory<OnCpu>: 64-byte aligned heap memory, with a per-process
// live/peak byte counter (the CPU side of the allocator high-water mark).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>

#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/memory.hpp"

namespace pdiff {

namespace detail {
struct CpuMemoryStats {
  std::atomic<std::size_t> live{0};
  std::atomic<std::size_t> peak{0};
};
inline CpuMemoryStats& cpu_memory_stats() {
  static CpuMemoryStats s;
  return s;
}
}  // namespace detail

template <>
struct memory<OnCpu> {
  static constexpr std::size_t alignment = 64;
  static void* allocate(std::size_t bytes) {
    void* p = ::operator new(bytes, std::align_val_t(alignment));
    auto& s = detail::cpu_memory_stats();
    std::size_t now = s.live.fetch_add(bytes) + bytes;
    std::size_t peak = s.peak.load();
    while (now > peak && !s.peak.compare_exchange_weak(peak, now)) {}
    return p;
  }
  static void deallocate(void* p, std::size_t bytes) {
    detail::cpu_memory_stats().live.fetch_sub(bytes);
    ::operator delete(p, std::align_val_t(alignment));
  }
  static void zero(void* p, std::size_t bytes) { std::memset(p, 0, bytes); }
  static void to_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void from_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
  static void copy(void* dst, const void* src, std::size_t bytes) { std::memmove(dst, src, bytes); }

  // Bytes held by CPU tensors in this process now, and the most ever held (since reset_peak()).
  static std::size_t live_bytes() { return detail::cpu_memory_stats().live.load(); }
  static std::size_t peak_bytes() { return detail::cpu_memory_stats().peak.load(); }
  static void reset_peak() { detail::cpu_memory_stats().peak.store(live_bytes()); }
};

}  // namespace pdiff
