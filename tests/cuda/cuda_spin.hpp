// Test helper: keeps a stream busy for a while (a kernel that waits on the GPU's global timer), so
// tests can observe stream ordering and timeouts.
#pragma once

#include <cuda_runtime_api.h>

namespace pdiff::test {
// Enqueues a single-thread kernel on `s` that returns after `ms` milliseconds of GPU time.
void spin(cudaStream_t s, int ms);
}  // namespace pdiff::test
