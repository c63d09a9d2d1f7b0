// pdiff/backend/cuda/kernels/rope.cuh — rotary position embeddings applied in place on CUDA
// (mirrors backend/cpu/rope.hpp apply_rope_half / apply_rope_interleaved).
//
// | style        | pairs rotated                | x (in place)  | cos, sin (fp32, as RopeTable holds them) |
// |--------------|------------------------------|---------------|-------------------------------------------|
// | half         | (x[i], x[i + D/2]), i < D/2  | (B, S, H, D)  | (S, D) or (B, S, D) when `batched`         |
// | interleaved  | (x[2i], x[2i + 1])           | (B, S, H, D)  | (S, D) or (B, S, D)                        |
// half (Llama/Mistral):   x₁' = x₁·c[i] − x₂·s[i],      x₂' = x₂·c[i+D/2] + x₁·s[i+D/2]
// interleaved (FLUX.2):   re' = re·c[2i] − im·s[2i],    im' = im·c[2i+1] + re·s[2i+1]
// The tables keep the CPU's full-width (…, D) layout (each frequency stored twice) so a RopeTable
// uploads unchanged. One thread per pair; T ∈ {float, bf16}, rotation in fp32.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

enum class RopePairs : int { half, interleaved };

namespace detail {
template <class T>
__global__ void rope_kernel(T* x, const float* __restrict__ cos, const float* __restrict__ sin, std::int64_t batch,
                            std::int64_t seq, std::int64_t heads, int d, bool batched, bool interleaved) {
  const int half = d / 2;
  const std::int64_t pairs = batch * seq * heads * half;
  for (std::int64_t p = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += std::int64_t(gridDim.x) * blockDim.x) {
    const int i = int(p % half);
    const std::int64_t row = p / half;  // (b, s, h) flattened
    const std::int64_t s = (row / heads) % seq, b = row / (heads * seq);
    const float* c = cos + ((batched ? b * seq : 0) + s) * d;
    const float* sn = sin + ((batched ? b * seq : 0) + s) * d;
    T* r = x + row * d;
    const int i1 = interleaved ? 2 * i : i, i2 = interleaved ? 2 * i + 1 : i + half;
    const float x1 = load_f(r + i1), x2 = load_f(r + i2);
    store_f(r + i1, x1 * c[i1] - x2 * sn[i1]);
    store_f(r + i2, x2 * c[i2] + x1 * sn[i2]);
  }
}
}  // namespace detail

// x: (B, S, H, D) device, in place; cos, sin: (S, D), or (B, S, D) with batched = true, fp32 device.
template <class T>
void launch_rope(T* x, const float* cos, const float* sin, std::int64_t batch, std::int64_t seq, std::int64_t heads,
                 int d, bool batched, RopePairs style, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_rope: T must be float or bf16");
  PDIFF_CHECK(d > 0 && d % 2 == 0, "rope: head dim (", d, ") must be even and positive");
  PDIFF_CHECK(batch >= 0 && seq >= 0 && heads >= 0, "rope: shape (", batch, ", ", seq, ", ", heads, ", ", d,
              ") is invalid");
  PDIFF_CHECK(batch * seq * heads == 0 || (x && cos && sin), "rope: x, cos and sin must be device pointers, got null");
  const std::int64_t pairs = batch * seq * heads * (d / 2);
  if (pairs == 0) return;
  detail::rope_kernel<T><<<detail::elementwise_blocks(pairs), 256, 0, stream>>>(
      x, cos, sin, batch, seq, heads, d, batched, style == RopePairs::interleaved);
  detail::check_launch("rope");
}

}  // namespace pdiff::cuda
