// pdiff/backend/cuda/stream.hpp — the stream pdiff's CUDA work goes to.
//
// | entity                        | meaning                                                      |
// |-------------------------------|--------------------------------------------------------------|
// | current_cuda_stream()         | this thread's current stream; default cudaStreamLegacy       |
// | set_current_cuda_stream(s)    | sets it for this thread (s must belong to the current device) |
// | CudaStreamGuard g(s)          | sets it for a scope, restores the previous one               |
// | CudaStream                    | an owning non-blocking stream on the current device          |
// Every pdiff CUDA call (allocation, memset/copies, gemm, kernels, NCCL collectives) is enqueued on
// the calling thread's current stream, so simulated ranks (threads) may each use their own stream.
// The default is the legacy default stream (one per device, shared by all threads, ordered with
// every blocking stream): correct without any setup. Allocations are stream-ordered on the stream
// current when they were made (see caching_allocator.hpp). Only with PDIFF_WITH_CUDA.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cuda_runtime_api.h>

#include <utility>

#include "pdiff/backend/cuda/check.hpp"

namespace pdiff {

namespace detail {
inline cudaStream_t& current_cuda_stream_slot() {
  thread_local cudaStream_t s = cudaStreamLegacy;
  return s;
}
}  // namespace detail

inline cudaStream_t current_cuda_stream() { return detail::current_cuda_stream_slot(); }
inline void set_current_cuda_stream(cudaStream_t s) { detail::current_cuda_stream_slot() = s; }

class CudaStreamGuard {
 public:
  explicit CudaStreamGuard(cudaStream_t s) : prev_(current_cuda_stream()) { set_current_cuda_stream(s); }
  ~CudaStreamGuard() { set_current_cuda_stream(prev_); }
  CudaStreamGuard(const CudaStreamGuard&) = delete;
  CudaStreamGuard& operator=(const CudaStreamGuard&) = delete;

 private:
  cudaStream_t prev_;
};

// Owns a stream created on the device current at construction. Tensors allocated on it must be
// freed (or the allocator's cache emptied) before it is destroyed: their blocks are ordered on it.
class CudaStream {
 public:
  explicit CudaStream(unsigned flags = cudaStreamNonBlocking) { PDIFF_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, flags)); }
  ~CudaStream() {
    if (s_) cudaStreamDestroy(s_);
  }
  CudaStream(CudaStream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  CudaStream& operator=(CudaStream&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return s_; }
  operator cudaStream_t() const { return s_; }
  void synchronize() const { PDIFF_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

}  // namespace pdiff
#endif
