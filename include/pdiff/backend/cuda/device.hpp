// pdiff/backend/cuda/device.hpp — the current CUDA device: query it, count devices, and
// CudaDeviceGuard, which makes a device current for a scope and restores the previous one.
// Only with PDIFF_WITH_CUDA; plain host C++.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "pdiff/backend/cuda/check.hpp"

namespace pdiff {

inline int cuda_device() {
  int d = 0;
  PDIFF_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

// Visible devices; 0 (not an error) when there is no driver or no device.
inline int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

// Restores the device current at construction even if the scope switched devices again.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device) : prev_(cuda_device()) {
    if (device != prev_) PDIFF_CUDA_CHECK(cudaSetDevice(device));
  }
  ~CudaDeviceGuard() {
    int now = prev_;
    if (cudaGetDevice(&now) == cudaSuccess && now != prev_) cudaSetDevice(prev_);
    cudaGetLastError();
  }
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int prev_;
};

}  // namespace pdiff
#endif
