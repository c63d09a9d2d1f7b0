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
// uploads unchanged. T ∈ {float, bf16}, rotation in fp32. With 16-byte aligned x, cos, sin and D a multiple
// of the vector (interleaved: 8 bf16 / 4 floats; half: twice that) a thread rotates one 16-byte vector of x
// (two for half: x₁ and x₂) with one token's table rows shared by its heads; else one thread per pair.
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
template <class T>
__global__ void rope_vec_kernel(T* x, const float* __restrict__ cos, const float* __restrict__ sin, std::int64_t batch,
                                std::int64_t seq, std::int64_t heads, int d, bool batched, bool interleaved) {
  using V = VecIo<T>;
  constexpr int n = V::n;
  const int span = interleaved ? d : d / 2;  // the part of a head row the vectors walk
  const int per_head = span / n;
  const std::int64_t per_token = heads * per_head, tokens = batch * seq;
  for (std::int64_t tok = blockIdx.y; tok < tokens; tok += gridDim.y) {
    const std::int64_t s = tok % seq, b = tok / seq;
    const float* c = cos + ((batched ? b * seq : 0) + s) * d;
    const float* sn = sin + ((batched ? b * seq : 0) + s) * d;
    T* xt = x + tok * heads * d;
    for (std::int64_t v = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < per_token;
         v += std::int64_t(gridDim.x) * blockDim.x) {
      const int h = int(v / per_head), j = int(v % per_head) * n;
      T* r = xt + std::int64_t(h) * d;
      float a[n], cj[n], sj[n];
      V::load(r + j, a);
#pragma unroll
      for (int q = 0; q < n; q += 4) {
        const float4 c4 = *reinterpret_cast<const float4*>(c + j + q), s4 = *reinterpret_cast<const float4*>(sn + j + q);
        cj[q] = c4.x, cj[q + 1] = c4.y, cj[q + 2] = c4.z, cj[q + 3] = c4.w;
        sj[q] = s4.x, sj[q + 1] = s4.y, sj[q + 2] = s4.z, sj[q + 3] = s4.w;
      }
      if (interleaved) {
#pragma unroll
        for (int k = 0; k < n; k += 2) {
          const float re = a[k], im = a[k + 1];
          a[k] = re * cj[k] - im * sj[k];
          a[k + 1] = im * cj[k + 1] + re * sj[k + 1];
        }
        V::store(r + j, a);
      } else {
        const int half = d / 2;
        float b2[n], c2[n], s2[n];
        V::load(r + half + j, b2);
#pragma unroll
        for (int q = 0; q < n; q += 4) {
          const float4 c4 = *reinterpret_cast<const float4*>(c + half + j + q),
                       s4 = *reinterpret_cast<const float4*>(sn + half + j + q);
          c2[q] = c4.x, c2[q + 1] = c4.y, c2[q + 2] = c4.z, c2[q + 3] = c4.w;
          s2[q] = s4.x, s2[q + 1] = s4.y, s2[q + 2] = s4.z, s2[q + 3] = s4.w;
        }
#pragma unroll
        for (int k = 0; k < n; ++k) {
          const float x1 = a[k], x2 = b2[k];
          a[k] = x1 * cj[k] - x2 * sj[k];
          b2[k] = x2 * c2[k] + x1 * s2[k];
        }
        V::store(r + j, a);
        V::store(r + half + j, b2);
      }
    }
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
  const bool interleaved = style == RopePairs::interleaved;
  constexpr int n = detail::VecIo<T>::n;
  if (d % (interleaved ? n : 2 * n) == 0 && detail::aligned16(x) && detail::aligned16(cos) && detail::aligned16(sin)) {
    const dim3 grid = detail::row_vector_grid(batch * seq, heads * ((interleaved ? d : d / 2) / n));
    detail::rope_vec_kernel<T><<<grid, 256, 0, stream>>>(x, cos, sin, batch, seq, heads, d, batched, interleaved);
  } else {
    detail::rope_kernel<T><<<detail::elementwise_blocks(pairs), 256, 0, stream>>>(x, cos, sin, batch, seq, heads, d,
                                                                                 batched, interleaved);
  }
  detail::check_launch("rope");
}

}  // namespace pdiff::cuda
