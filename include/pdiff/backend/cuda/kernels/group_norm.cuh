// pdiff/backend/cuda/kernels/group_norm.cuh — GroupNorm on CUDA (mirrors backend/cpu/norm.hpp group_norm).
//
// | case                  | x, out             | w, b            | result                                   |
// |-----------------------|--------------------|-----------------|------------------------------------------|
// | group_norm, affine    | (B, C, rest)       | (C), (C)        | per (batch, group): (x − mean)/sqrt(var + eps)·w[c] + b[c] |
// | group_norm, no affine | (B, C, rest)       | nullptr         | without w, b                             |
// rest = H·W (any spatial extent). One block of 512 threads per (batch, group): the group's
// C/groups·rest elements are contiguous. Two passes in fp32 (mean, then Σ(x − mean)²). For very
// large images and few groups this leaves SMs idle (B·groups blocks); a split reduction is future work.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void group_norm_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* out,
                                  std::int64_t channels, std::int64_t rest, int groups, float eps) {
  __shared__ float red[32];
  const std::int64_t cpg = channels / groups, n = cpg * rest;
  const std::int64_t base = std::int64_t(blockIdx.x) * n;  // blockIdx.x = batch·groups + group
  const std::int64_t c0 = (std::int64_t(blockIdx.x) % groups) * cpg;
  float s = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += load_f(x + base + i);
  const float mean = block_row_sum(s, red) / float(n);
  float ss = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = load_f(x + base + i) - mean;
    ss += v * v;
  }
  const float inv = rsqrtf(block_row_sum(ss, red) / float(n) + eps);
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const std::int64_t c = c0 + i / rest;
    float v = (load_f(x + base + i) - mean) * inv;
    if (w) v *= load_f(w + c);
    if (b) v += load_f(b + c);
    store_f(out + base + i, v);
  }
}
}  // namespace detail

// x, out: (B, C, rest) device; w, b: (C) device or nullptr.
template <class T>
void launch_group_norm(const T* x, const T* w, const T* b, T* out, std::int64_t batch, std::int64_t channels,
                       std::int64_t rest, int groups, float eps, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_group_norm: T must be float or bf16");
  PDIFF_CHECK(groups > 0 && channels % groups == 0, "group_norm: channels (", channels,
              ") must be divisible by groups (", groups, ")");
  PDIFF_CHECK(batch >= 0 && rest >= 0, "group_norm: shape (", batch, ", ", channels, ", ", rest, ") is invalid");
  PDIFF_CHECK(batch * rest == 0 || (x && out), "group_norm: x and out must be device pointers, got null");
  if (batch == 0 || rest == 0) return;
  const std::int64_t blocks = batch * groups;
  PDIFF_CHECK(blocks <= 0x7fffffff, "group_norm: B·groups (", blocks, ") exceeds the grid limit");
  detail::group_norm_kernel<T><<<unsigned(blocks), 512, 0, stream>>>(x, w, b, out, channels, rest, groups, eps);
  detail::check_launch("group_norm");
}

}  // namespace pdiff::cuda
