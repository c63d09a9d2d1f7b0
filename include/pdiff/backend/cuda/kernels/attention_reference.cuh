// pdiff/backend/cuda/kernels/attention_reference.cuh — a plain fp32 attention on CUDA: one thread
// block per (query row, head, batch). The cross-check for flash_attention.cuh on the device and
// the fallback for head dims the flash kernel does not take; slow (scores re-read K and V from
// global memory, no tensor cores).
//
// | input         | shape                       | notes                                        |
// |---------------|-----------------------------|----------------------------------------------|
// | q, out        | (B, Sq, H, D) T             | T ∈ {float, bf16}; any D ≤ 1024               |
// | k, v          | (B, Sk, Hkv, D) T           | GQA as the CPU op                             |
// | lse           | (B, H, Sq) fp32 or nullptr  | natural log, −inf for a fully masked row      |
// | AttnParams    | attention_params.cuh        | scale, causal + offsets, key_mask, mask       |
// The Sk scores of a row live in shared memory: Sk ≤ 48 000.
#pragma once

#include <cmath>
#include <cstdint>

#include "pdiff/backend/cuda/kernels/attention_params.cuh"
#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void attention_reference_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                           T* __restrict__ out, float* __restrict__ lse, int sq, int sk, int heads,
                                           int group, int d, float scale, AttnParams p) {
  extern __shared__ float ref_smem[];
  __shared__ float red[32];
  float* sq_row = ref_smem;  // (D)
  float* sc = ref_smem + d;  // (Sk)
  const int qi = int(blockIdx.x), h = int(blockIdx.y), b = int(blockIdx.z), hk = h / group;
  const int kvh = heads / group;
  const T* qr = q + ((std::int64_t(b) * sq + qi) * heads + h) * d;
  for (int i = int(threadIdx.x); i < d; i += int(blockDim.x)) sq_row[i] = load_f(qr + i);
  __syncthreads();
  float mx = -INFINITY;
  for (int j = int(threadIdx.x); j < sk; j += int(blockDim.x)) {
    bool keep = true;
    if (p.causal) keep = p.k_offset + j <= p.q_offset + qi;
    if (keep && p.key_mask) keep = p.key_mask[std::int64_t(b) * sk + j] != 0;
    if (keep && p.mask)
      keep = p.mask[(p.mask_batched ? std::int64_t(b) * sq * sk : 0) + std::int64_t(qi) * sk + j] != 0;
    float s = -INFINITY;
    if (keep) {
      const T* kr = k + ((std::int64_t(b) * sk + j) * kvh + hk) * d;
      float dot = 0.0f;
      for (int i = 0; i < d; ++i) dot += sq_row[i] * load_f(kr + i);
      s = dot * scale;
    }
    sc[j] = s;
    mx = fmaxf(mx, s);
  }
  const float m = block_row_max(mx, red);
  float sum = 0.0f;
  for (int j = int(threadIdx.x); j < sk; j += int(blockDim.x)) {
    const float e = m == -INFINITY ? 0.0f : expf(sc[j] - m);
    sc[j] = e;
    sum += e;
  }
  const float l = block_row_sum(sum, red);
  __syncthreads();  // every sc[j] written before any thread reads all of them
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  T* orow = out + ((std::int64_t(b) * sq + qi) * heads + h) * d;
  for (int i = int(threadIdx.x); i < d; i += int(blockDim.x)) {
    float acc = 0.0f;
    for (int j = 0; j < sk; ++j) acc += sc[j] * load_f(v + ((std::int64_t(b) * sk + j) * kvh + hk) * d + i);
    store_f(orow + i, acc * inv);
  }
  if (lse && threadIdx.x == 0)
    lse[(std::int64_t(b) * heads + h) * sq + qi] = l > 0.0f ? m + logf(l) : -INFINITY;
}
}  // namespace detail

// Same arguments as launch_flash_attention, T ∈ {float, bf16}, any head_dim in [1, 1024].
template <class T>
void launch_attention_reference(const T* q, const T* k, const T* v, T* out, float* lse, std::int64_t batch,
                                std::int64_t sq, std::int64_t sk, int heads, int kv_heads, int head_dim,
                                const AttnParams& p, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_attention_reference: T must be float or bf16");
  PDIFF_CHECK(head_dim > 0 && head_dim <= 1024, "attention_reference: head_dim (", head_dim,
              ") must be in [1, 1024]");
  PDIFF_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0, "attention_reference: query heads (", heads,
              ") must be a positive multiple of kv heads (", kv_heads, ")");
  PDIFF_CHECK(batch >= 0 && batch <= 65535 && heads <= 65535 && sq >= 0 && sq <= 0x7fffffff && sk >= 0 &&
                  sk <= 48000,
              "attention_reference: B (", batch, "), H (", heads, "), Sq (", sq, ") or Sk (", sk,
              ") out of range (B, H ≤ 65535; Sk ≤ 48000)");
  if (batch == 0 || sq == 0) return;
  PDIFF_CHECK(q && k && v && out, "attention_reference: q, k, v and out must be device pointers, got null");
  const float scale = p.scale > 0.0f ? p.scale : 1.0f / std::sqrt(float(head_dim));
  const int bytes = int((head_dim + sk) * sizeof(float));
  const cudaError_t e = detail::raise_dynamic_smem(detail::attention_reference_kernel<T>, bytes);
  PDIFF_CHECK(e == cudaSuccess, "attention_reference: cannot reserve ", bytes, " bytes of shared memory: ",
              cudaGetErrorString(e));
  const dim3 grid{unsigned(sq), unsigned(heads), unsigned(batch)};
  detail::attention_reference_kernel<T><<<grid, 128, bytes, stream>>>(
      q, k, v, out, lse, int(sq), int(sk), heads, heads / kv_heads, head_dim, scale, p);
  detail::check_launch("attention_reference");
}

}  // namespace pdiff::cuda
