// pdiff/backend/cuda/kernels/activation.cuh — element-wise activations on CUDA (mirrors
// backend/cpu/activation.hpp silu and gelu_tanh).
//
// | op         | x, out (any shape, n elements) | result                                    |
// |------------|--------------------------------|-------------------------------------------|
// | silu       | (n)                            | x·σ(x) = x / (1 + e^−x)                   |
// | gelu_tanh  | (n)                            | 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) |
// T ∈ {float, bf16}, math in fp32 (expf/tanhf, not the fast intrinsics: memory-bound anyway).
// out may equal x.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

enum class Activation : int { silu, gelu_tanh };

namespace detail {
__device__ __forceinline__ float silu_f(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float gelu_tanh_f(float v) {
  return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

template <class T>
__global__ void activation_kernel(const T* x, T* out, std::int64_t n, int act) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float v = load_f(x + i);
    store_f(out + i, act == int(Activation::silu) ? silu_f(v) : gelu_tanh_f(v));
  }
}
}  // namespace detail

// x, out: n elements, device.
template <class T>
void launch_activation(const T* x, T* out, std::int64_t n, Activation act, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_activation: T must be float or bf16");
  const char* name = act == Activation::silu ? "silu" : "gelu_tanh";
  PDIFF_CHECK(n >= 0, name, ": element count (", n, ") must be ≥ 0");
  PDIFF_CHECK(n == 0 || (x && out), name, ": x and out must be device pointers, got null");
  if (n == 0) return;
  detail::activation_kernel<T><<<detail::elementwise_blocks(n), 256, 0, stream>>>(x, out, n, int(act));
  detail::check_launch(name);
}
template <class T>
void launch_silu(const T* x, T* out, std::int64_t n, cudaStream_t stream) {
  launch_activation<T>(x, out, n, Activation::silu, stream);
}
template <class T>
void launch_gelu_tanh(const T* x, T* out, std::int64_t n, cudaStream_t stream) {
  launch_activation<T>(x, out, n, Activation::gelu_tanh, stream);
}

}  // namespace pdiff::cuda
