// pdiff/backend/cuda/handles.hpp — per_thread_handle<H, Create, Destroy>(device, what): one library handle
// (cuBLASLt, cuBLAS) per (thread, device), made on first use and destroyed with the thread. A cuBLAS handle
// belongs to the device current when it was made, and threads enqueueing at once must not share one, so
// every (thread, device) gets its own without locks. Only with PDIFF_WITH_CUDA; plain host C++.
#pragma once

#if defined(PDIFF_WITH_CUDA)
#include <cublas_api.h>

#include <vector>

#include "pdiff/core/error.hpp"

namespace pdiff::detail {

template <class H, cublasStatus_t (*Create)(H*), cublasStatus_t (*Destroy)(H)>
H per_thread_handle(int device, const char* what) {
  struct Handles {
    std::vector<H> h;
    ~Handles() {
      for (H x : h)
        if (x) Destroy(x);
    }
  };
  thread_local Handles hs;
  if (int(hs.h.size()) <= device) hs.h.resize(std::size_t(device) + 1, nullptr);
  H& slot = hs.h[std::size_t(device)];
  if (!slot) {
    H made = nullptr;  // kept only when made: a failed create leaves nothing cached
    if (const cublasStatus_t s = Create(&made); s != CUBLAS_STATUS_SUCCESS)
      throw Error(cat(what, ": making a handle for device ", device, " failed: ", cublasGetStatusString(s)));
    slot = made;
  }
  return slot;
}

}  // namespace pdiff::detail
#endif
