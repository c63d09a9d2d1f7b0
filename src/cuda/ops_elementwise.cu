// src/cuda/ops_elementwise.cu — element-wise CUDA ops of backend/cuda/ops.hpp: activations, SwiGLU,
// (LayerNorm +) modulate, gated add, add, conversions. Shapes and errors as the CPU ops.
#include "ops_common.cuh"

#include "pdiff/backend/cuda/convert.cuh"
#include "pdiff/backend/cuda/kernels/activation.cuh"
#include "pdiff/backend/cuda/kernels/gated_add.cuh"
#include "pdiff/backend/cuda/kernels/layer_norm.cuh"
#include "pdiff/backend/cuda/kernels/swiglu.cuh"
#include "pdiff/core/swiglu_dims.hpp"

namespace pdiff {

namespace detail {
// out = (1 + scale[b, d])·x + shift[b, d];  x, out: (B, S, D), shift/scale: (B, D).
template <class T>
__global__ void modulate_kernel(const T* x, const T* shift, const T* scale, T* out, std::int64_t seq, std::int64_t d,
                                std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = i / (seq * d), c = b * d + i % d;
    out[i] = from_float<T>((1.0f + to_float(scale[c])) * to_float(x[i]) + to_float(shift[c]));
  }
}
// dst[i] = src[0·n + i] ∘ src[1·n + i] ∘ … ∘ src[(rows−1)·n + i] (∘ = + or max), in row order, in fp32.
template <class T>
__global__ void reduce_rows_kernel(const T* src, T* dst, int rows, std::int64_t n, bool max) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    float acc = to_float(src[i]);
    for (int r = 1; r < rows; ++r) {
      const float v = to_float(src[std::int64_t(r) * n + i]);
      acc = max ? fmaxf(acc, v) : acc + v;
    }
    dst[i] = from_float<T>(acc);
  }
}
// x += y, y of x's size or of its last dimension (broadcast).
template <class T>
__global__ void add_kernel(T* x, const T* y, std::int64_t n, std::int64_t ny) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    x[i] = from_float<T>(to_float(x[i]) + to_float(y[i % ny]));
}
}  // namespace detail

template <class T>
CudaTensor<T> silu(const CudaTensor<T>& x) {
  CudaTensor<T> o(x.shape());
  cuda::launch_silu(x.data(), o.data(), x.numel(), current_cuda_stream());
  return o;
}
template <class T>
CudaTensor<T> gelu_tanh(const CudaTensor<T>& x) {
  CudaTensor<T> o(x.shape());
  cuda::launch_gelu_tanh(x.data(), o.data(), x.numel(), current_cuda_stream());
  return o;
}
template <class T>
CudaTensor<T> swiglu(const CudaTensor<T>& x) {
  const auto d = SwigluDims::of(x.shape());
  Shape s = x.shape();
  s[-1] = d.in;
  CudaTensor<T> o(s);
  cuda::launch_swiglu(x.data(), o.data(), d.rows, d.in, current_cuda_stream());
  return o;
}
template <class T>
void swiglu_into(const CudaTensor<T>& x, CudaTensor<T>& out, std::int64_t col0) {
  const auto d = SwigluDims::into(x.shape(), out.shape(), col0);
  cuda::launch_swiglu(x.data(), out.data() + col0, d.rows, d.in, current_cuda_stream(), d.width);
}
template <class T>
CudaTensor<T> modulate(const CudaTensor<T>& x, const CudaTensor<T>& shift, const CudaTensor<T>& scale) {
  detail::check_mod_cuda("modulate", x, shift);
  detail::check_mod_cuda("modulate", x, scale);
  CudaTensor<T> o(x.shape());
  const std::int64_t n = x.numel();
  if (n == 0) return o;
  detail::modulate_kernel<T><<<cuda::detail::elementwise_blocks(n), 256, 0, current_cuda_stream()>>>(
      x.data(), shift.data(), scale.data(), o.data(), x.size(1), x.size(2), n);
  cuda::detail::check_launch("modulate");
  return o;
}
template <class T>
CudaTensor<T> layer_norm_modulate(const CudaTensor<T>& x, float eps, const CudaTensor<T>& shift,
                                  const CudaTensor<T>& scale) {
  detail::check_mod_cuda("layer_norm_modulate", x, shift);
  detail::check_mod_cuda("layer_norm_modulate", x, scale);
  CudaTensor<T> o(x.shape());
  cuda::launch_layer_norm_modulate<T>(x.data(), nullptr, nullptr, shift.data(), scale.data(), o.data(), x.size(0),
                                      x.size(1), detail::as_int_dim(x.size(2), "layer_norm_modulate"), eps,
                                      current_cuda_stream());
  return o;
}
template <class T>
void gated_add(CudaTensor<T>& x, const CudaTensor<T>& gate, const CudaTensor<T>& y) {
  detail::check_mod_cuda("gated_add", x, gate);
  PDIFF_CHECK(x.shape() == y.shape(), "gated_add: x", x.shape(), " and y", y.shape(), " must match");
  cuda::launch_gated_add(x.data(), gate.data(), y.data(), x.size(0), x.size(1), x.size(2), current_cuda_stream());
}
template <class T>
void add_(CudaTensor<T>& x, const CudaTensor<T>& y) {
  const std::int64_t n = x.numel();
  PDIFF_CHECK(y.numel() == n || (x.rank() >= 1 && y.numel() == x.size(-1)), "add: y", y.shape(), " must match x",
              x.shape(), " or its last dimension");
  if (n == 0) return;
  detail::add_kernel<T><<<cuda::detail::elementwise_blocks(n), 256, 0, current_cuda_stream()>>>(x.data(), y.data(), n,
                                                                                                   y.numel());
  cuda::detail::check_launch("add");
}
template <class T>
CudaTensor<T> add(const CudaTensor<T>& x, const CudaTensor<T>& y) {
  CudaTensor<T> o = x.clone();
  add_(o, y);
  return o;
}

template <class T>
void reduce_rows(const T* src, T* dst, int rows, std::int64_t n, bool max) {
  PDIFF_CHECK(rows >= 1 && n >= 0, "reduce_rows: ", rows, " rows of ", n, " elements");
  if (n == 0) return;
  detail::reduce_rows_kernel<T><<<cuda::detail::elementwise_blocks(n), 256, 0, current_cuda_stream()>>>(src, dst, rows, n,
                                                                                                        max);
  cuda::detail::check_launch("reduce_rows");
}

#define PDIFF_INSTANTIATE(T)                                                                                       \
  template void reduce_rows(const T*, T*, int, std::int64_t, bool);                                               \
  template CudaTensor<T> silu(const CudaTensor<T>&);                                                              \
  template CudaTensor<T> gelu_tanh(const CudaTensor<T>&);                                                         \
  template CudaTensor<T> swiglu(const CudaTensor<T>&);                                                            \
  template void swiglu_into(const CudaTensor<T>&, CudaTensor<T>&, std::int64_t);                                  \
  template CudaTensor<T> modulate(const CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<T>&);              \
  template CudaTensor<T> layer_norm_modulate(const CudaTensor<T>&, float, const CudaTensor<T>&,                   \
                                             const CudaTensor<T>&);                                               \
  template void gated_add(CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<T>&);                            \
  template void add_(CudaTensor<T>&, const CudaTensor<T>&);                                                       \
  template CudaTensor<T> add(const CudaTensor<T>&, const CudaTensor<T>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

template CudaTensor<float> convert<float, bf16>(const CudaTensor<bf16>&);
template CudaTensor<bf16> convert<bf16, float>(const CudaTensor<float>&);
template CudaTensor<float> convert<float, float>(const CudaTensor<float>&);
template CudaTensor<bf16> convert<bf16, bf16>(const CudaTensor<bf16>&);

}  // namespace pdiff
