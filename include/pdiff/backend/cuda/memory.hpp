// pdiff/backend/cuda/memory.hpp — memory<OnCuda>: device memory for Tensor<T, OnCuda> from the
// stream-ordered caching pool (caching_allocator.hpp), copies on the current stream (stream.hpp).
//
// | function                    | stream behaviour                                                  |
// |-----------------------------|-------------------------------------------------------------------|
// | allocate / deallocate       | ordered on the current stream; a freed block is reused at once    |
// | zero, copy, copy_2d (d↔d)   | enqueued on the current stream, returns at once (copy_2d between  |
// |                             | device buffers: a vector kernel where pdiff_cuda_ops is linked)   |
// | to_host, from_host          | enqueued on the current stream, then that stream is synchronised, |
// |                             | so the host buffer is ready / reusable when they return           |
// | live/peak/reserved_bytes()  | of the current device (or the one given); peak = high-water mark  |
// | thread_live/peak_bytes()    | of the calling thread's blocks (one thread rank), every device     |
// Only with PDIFF_WITH_CUDA; plain host C++ (no kernels), compiles with g++.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cuda_runtime_api.h>

#include <cstddef>

#include "pdiff/backend/cuda/caching_allocator.hpp"
#include "pdiff/backend/cuda/check.hpp"
#include "pdiff/backend/cuda/device.hpp"
#include "pdiff/backend/cuda/stream.hpp"
#include "pdiff/core/backend_tag.hpp"
#include "pdiff/core/memory.hpp"

namespace pdiff {

#if defined(PDIFF_CUDA_OPS)
namespace cuda {
// A 16-byte-vector copy kernel for copy_2d between device buffers (src/cuda/ops_index.cu): false, having
// done nothing, unless both pointers are device memory and the pointers, pitches and width are multiples of
// 16 bytes. cudaMemcpy2DAsync moved ~0.9 TB/s device to device on an H200 (3% of a FLUX.2-dev step).
bool copy_2d_device(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                    std::size_t height, cudaStream_t stream);
}  // namespace cuda
#endif

template <>
struct memory<OnCuda> {
  static constexpr std::size_t alignment = 256;  // cudaMalloc's guarantee, kept by the pool

  static void* allocate(std::size_t bytes) {
    return CudaCachingAllocator::instance().allocate(bytes, current_cuda_stream());
  }
  static void deallocate(void* p, std::size_t /*bytes*/) noexcept { CudaCachingAllocator::instance().deallocate(p); }
  // Zero bytes is a no-op: an empty tensor holds no pointer, and CUDA calls refuse a null one even for 0 bytes.
  static void zero(void* p, std::size_t bytes) {
    if (bytes == 0) return;
    PDIFF_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, current_cuda_stream()));
  }
  // cudaMemcpyDefault (unified addressing infers the direction): a caller that hands a host pointer to a
  // device communicator (StagedComm) gets a host copy instead of cudaErrorInvalidValue.
  static void to_host(void* host_dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    const cudaStream_t s = current_cuda_stream();
    PDIFF_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDefault, s));
    PDIFF_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  static void from_host(void* dst, const void* host_src, std::size_t bytes) {
    if (bytes == 0) return;
    const cudaStream_t s = current_cuda_stream();
    PDIFF_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyDefault, s));
    PDIFF_CUDA_CHECK(cudaStreamSynchronize(s));  // a pinned host_src would otherwise be read later
  }
  // Within the device backend; also between devices (unified addressing).
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    PDIFF_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, current_cuda_stream()));
  }
  // `height` rows of `width` bytes, rows `dpitch`/`spitch` bytes apart, enqueued on the current stream.
  static void copy_2d(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                      std::size_t height) {
    if (width == 0 || height == 0) return;
#if defined(PDIFF_CUDA_OPS)
    if (cuda::copy_2d_device(dst, dpitch, src, spitch, width, height, current_cuda_stream())) return;
#endif
    PDIFF_CUDA_CHECK(
        cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDefault, current_cuda_stream()));
  }

  static CudaMemoryStats stats(int device) { return CudaCachingAllocator::instance().stats(device); }
  static CudaMemoryStats stats() { return stats(cuda_device()); }
  static std::size_t live_bytes() { return stats().live; }
  static std::size_t peak_bytes() { return stats().peak; }
  static std::size_t reserved_bytes() { return stats().reserved; }
  static void reset_peak() { CudaCachingAllocator::instance().reset_peak(cuda_device()); }
  // Bytes the calling thread's tensors hold on any device, and their high-water mark: one rank's
  // figure when several thread ranks share a GPU (ThreadComm).
  static std::size_t thread_live_bytes() { return detail::thread_byte_counter<OnCuda>().live.load(); }
  static std::size_t thread_peak_bytes() { return detail::thread_byte_counter<OnCuda>().peak.load(); }
  static void reset_thread_peak() { detail::thread_byte_counter<OnCuda>().reset_peak(); }
  // Returns cached (free) blocks of every device to CUDA.
  static void empty_cache() { CudaCachingAllocator::instance().empty_cache(); }
};

}  // namespace pdiff
#endif
