// pdiff/backend/cuda/caching_allocator.hpp — CudaCachingAllocator: the stream-ordered caching pool
// behind memory<OnCuda>. One pool per device; thread-safe (ranks as threads share a GPU).
//
// | request                                   | served by                                          |
// |-------------------------------------------|----------------------------------------------------|
// | allocate(bytes, s), a cached block of the | that block at once (stream order makes it safe)    |
// |   same rounded size freed on stream s     |                                                    |
// | … one freed on another stream            | that block if the event recorded at its free has   |
// |                                           |   completed, else not (a new cudaMalloc)           |
// | nothing cached fits                       | cudaMalloc; on out-of-memory the device's cache is |
// |                                           |   synchronised and released, then cudaMalloc again |
// | deallocate(p)                             | an event recorded on the block's stream; the block |
// |                                           |   goes to its size bin                             |
// Sizes are rounded to 512 B up to 1 MiB and to quarter powers of two above (≤ 25 % waste), and a
// block is reused only for the same rounded size (no splitting): diffusion steps repeat the same
// shapes, so after the first step every allocation is a cache hit.
// A block belongs to the stream it was allocated on. If the thread that frees it has a different
// current stream, that stream's work is made to precede the block's stream (event + wait), so a
// tensor used on the freeing stream is not overwritten by the next user on the block's stream.
// Work on any third stream must be synchronised by the user (as with PyTorch's record_stream).
// live = bytes requested and not freed; peak = high-water mark of live (since reset_peak); each
// block is also charged to its allocating thread's ByteCounter (per-rank figures for thread ranks);
// reserved = bytes obtained from cudaMalloc (live blocks + cache). The pool is never destroyed
// (freeing tensors at process exit must stay valid); empty_cache() gives the cache back.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/byte_counter.hpp"
#include "pdiff/core/rank_note.hpp"

namespace pdiff {

struct CudaMemoryStats {
  std::size_t live = 0;      // requested bytes of blocks in use
  std::size_t peak = 0;      // the most `live` has been since reset_peak()
  std::size_t reserved = 0;  // bytes held from cudaMalloc (in use + cached)
  std::size_t cached = 0;    // bytes of free blocks kept for reuse
  std::uint64_t mallocs = 0; // cudaMalloc calls
  std::uint64_t hits = 0;    // allocations served from the cache
};

class CudaCachingAllocator {
 public:
  static CudaCachingAllocator& instance() {
    static CudaCachingAllocator* a = new CudaCachingAllocator();  // leaked on purpose, see above
    return *a;
  }

  static std::size_t round_size(std::size_t bytes) {
    constexpr std::size_t small = 1u << 20, quantum = 512;
    if (bytes <= small) return std::max<std::size_t>(quantum, (bytes + quantum - 1) / quantum * quantum);
    std::size_t p = small;
    while (p * 2 < bytes) p *= 2;  // p < bytes ≤ 2p
    const std::size_t step = p / 4;
    return (bytes + step - 1) / step * step;
  }

  // A block of at least `bytes` on the current device, ordered on stream `s`. nullptr for 0 bytes.
  void* allocate(std::size_t bytes, cudaStream_t s) {
    if (bytes == 0) return nullptr;
    const int d = cuda_device();
    const std::size_t size = round_size(bytes);
    Pool& p = pool(d);
    cudaEvent_t stale = nullptr;
    void* hit = nullptr;
    {
      std::lock_guard lk(p.mu);
      if (auto it = p.free.find(size); it != p.free.end()) {
        std::vector<Block>& bin = it->second;
        std::size_t pick = bin.size();
        for (std::size_t i = bin.size(); i-- > 0;)  // newest first: likely still in L2
          if (bin[i].stream == s) { pick = i; break; }
        if (pick == bin.size())
          for (std::size_t i = bin.size(); i-- > 0;)
            if (!bin[i].ready || cudaEventQuery(bin[i].ready) == cudaSuccess) { pick = i; break; }
        if (pick != bin.size()) {
          Block b = bin[pick];
          bin.erase(bin.begin() + std::ptrdiff_t(pick));
          if (bin.empty()) p.free.erase(it);
          stale = b.ready;
          b.ready = nullptr;
          b.stream = s;
          b.requested = bytes;
          b.owner = &detail::thread_byte_counter<OnCuda>();
          b.owner->add(bytes);
          p.active.emplace(b.ptr, b);
          p.st.cached -= size;
          ++p.st.hits;
          add_live(p, bytes);
          hit = b.ptr;
        }
      }
      if (stale) p.idle_events.push_back(stale);
    }
    if (hit) return hit;

    void* ptr = nullptr;
    cudaError_t e = cudaMalloc(&ptr, size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cache(d);
      e = cudaMalloc(&ptr, size);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      const CudaMemoryStats st = stats(d);
      throw Error(out_of_memory_message(
          detail::cat("memory<OnCuda> on device ", d), std::int64_t(bytes),
          detail::cat(cudaGetErrorString(e), " (", size, " bytes rounded)"),
          std::int64_t(detail::thread_byte_counter<OnCuda>().live.load()),
          detail::cat("the process ", detail::gib_text(std::int64_t(st.live)), " live and ",
                      detail::gib_text(std::int64_t(st.reserved)), " reserved there")));
    }
    std::lock_guard lk(p.mu);
    detail::ByteCounter* owner = &detail::thread_byte_counter<OnCuda>();
    owner->add(bytes);
    p.active.emplace(ptr, Block{ptr, size, bytes, s, nullptr, owner});
    p.st.reserved += size;
    ++p.st.mallocs;
    add_live(p, bytes);
    return ptr;
  }

  // Returns p's block to its device's cache; never throws (called from tensor destructors).
  void deallocate(void* ptr) noexcept {
    if (!ptr) return;
    int cur = 0;
    if (cudaGetDevice(&cur) != cudaSuccess) {  // e.g. the runtime is unloading at process exit
      cudaGetLastError();
      return;
    }
    int d = -1;
    Block b{};
    for (int k = 0; k < int(pools_.size()) && d < 0; ++k) {
      const int dev = k == 0 ? cur : (k <= cur ? k - 1 : k);  // the current device first
      Pool& p = *pools_[std::size_t(dev)];
      std::lock_guard lk(p.mu);
      if (auto it = p.active.find(ptr); it != p.active.end()) {
        b = it->second;
        p.active.erase(it);
        p.st.live -= b.requested;
        if (b.owner) b.owner->sub(b.requested);
        b.owner = nullptr;
        d = dev;
      }
    }
    if (d < 0) return;  // not ours: nothing sensible to do in a destructor
    Pool& p = *pools_[std::size_t(d)];
    b.ready = record_free(p, d, b.stream);
    std::lock_guard lk(p.mu);
    p.free[b.size].push_back(b);
    p.st.cached += b.size;
  }

  // Gives every cached block of every device back to CUDA (waits for their last use).
  void empty_cache() {
    for (int d = 0; d < int(pools_.size()); ++d) release_cache(d);
  }

  CudaMemoryStats stats(int device) const {
    const Pool& p = *pools_.at(std::size_t(device));
    std::lock_guard lk(p.mu);
    return p.st;
  }
  void reset_peak(int device) {
    Pool& p = *pools_.at(std::size_t(device));
    std::lock_guard lk(p.mu);
    p.st.peak = p.st.live;
  }

 private:
  struct Block {
    void* ptr = nullptr;
    std::size_t size = 0;       // rounded, as obtained from cudaMalloc
    std::size_t requested = 0;  // the bytes asked for (live accounting)
    cudaStream_t stream = nullptr;
    cudaEvent_t ready = nullptr;  // recorded at free on `stream`; null: usable anywhere
    detail::ByteCounter* owner = nullptr;  // the allocating thread's counter (per-rank accounting), credited at free
  };
  struct Pool {
    mutable std::mutex mu;
    std::unordered_map<void*, Block> active;
    std::map<std::size_t, std::vector<Block>> free;  // rounded size → cached blocks
    std::vector<cudaEvent_t> idle_events;
    CudaMemoryStats st;
  };

  CudaCachingAllocator() {
    const int n = cuda_device_count();
    for (int d = 0; d < n; ++d) pools_.push_back(std::make_unique<Pool>());
  }

  Pool& pool(int d) {
    PDIFF_CHECK(d >= 0 && d < int(pools_.size()), "memory<OnCuda>: device ", d, " is not one of the ", pools_.size(),
                " visible devices");
    return *pools_[std::size_t(d)];
  }

  static void add_live(Pool& p, std::size_t bytes) {
    p.st.live += bytes;
    p.st.peak = std::max(p.st.peak, p.st.live);
  }

  // An event on device d recorded after the work on `stream` and on the freeing thread's current
  // stream; nullptr after a full device synchronisation when recording is impossible.
  static cudaEvent_t record_free(Pool& p, int d, cudaStream_t stream) noexcept {
    int prev = -1;
    cudaGetDevice(&prev);
    if (prev != d && cudaSetDevice(d) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    cudaEvent_t ev = take_event(p);
    cudaEvent_t other = nullptr;
    const cudaStream_t freeing = current_cuda_stream();
    bool ok = ev != nullptr;
    if (ok && freeing != stream && prev == d) {  // the freeing stream belongs to this device
      other = take_event(p);
      ok = other && cudaEventRecord(other, freeing) == cudaSuccess &&
           cudaStreamWaitEvent(stream, other, 0) == cudaSuccess;
    }
    ok = ok && cudaEventRecord(ev, stream) == cudaSuccess;
    if (!ok) {  // e.g. the block's stream was destroyed: order by a full synchronisation instead
      cudaGetLastError();
      cudaDeviceSynchronize();
      cudaGetLastError();
      if (ev) give_event(p, ev);
      ev = nullptr;
    }
    if (other) give_event(p, other);
    if (prev != d) cudaSetDevice(prev);
    return ev;
  }
  static cudaEvent_t take_event(Pool& p) noexcept {
    {
      std::lock_guard lk(p.mu);
      if (!p.idle_events.empty()) {
        cudaEvent_t e = p.idle_events.back();
        p.idle_events.pop_back();
        return e;
      }
    }
    cudaEvent_t e = nullptr;
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return e;
  }
  static void give_event(Pool& p, cudaEvent_t e) noexcept {
    std::lock_guard lk(p.mu);
    p.idle_events.push_back(e);
  }

  void release_cache(int d) {
    Pool& p = pool(d);
    std::vector<Block> blocks;
    {
      std::lock_guard lk(p.mu);
      for (auto& [size, bin] : p.free)
        for (Block& b : bin) blocks.push_back(b);
      p.free.clear();
    }
    if (blocks.empty()) return;
    CudaDeviceGuard g(d);
    for (Block& b : blocks) {
      if (b.ready) {
        cudaEventSynchronize(b.ready);
        give_event(p, b.ready);
      }
      cudaFree(b.ptr);  // also waits for the device's pending work
      std::lock_guard lk(p.mu);
      p.st.reserved -= b.size;
      p.st.cached -= b.size;
    }
    cudaGetLastError();
  }

  std::vector<std::unique_ptr<Pool>> pools_;  // one per visible device, fixed at first use
};

}  // namespace pdiff
#endif
