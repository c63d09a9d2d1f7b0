// pdiff/backend/cuda/kernels/swiglu.cuh — SwiGLU on CUDA (mirrors backend/cpu/activation.hpp swiglu).
//
// | case    | x                        | out          | result                        |
// |---------|--------------------------|--------------|-------------------------------|
// | swiglu  | (rows, 2F) = [gate | up] | (rows, F), rows `pitch` ≥ F apart | silu(x[:, :F]) · x[:, F:] |
// T ∈ {float, bf16}, math in fp32. out must not overlap x. A pitch > F writes F columns of a wider buffer
// (swiglu_into: FLUX.2's packed [attention | mlp], no cat). Rows whose halves and outputs start 16-byte
// aligned (F and the pitch multiples of 8 bf16 / 4 floats) take 16-byte vectors, one row per grid row: on an
// H200 the scalar kernel moved 1.2 TB/s at FLUX.2-dev's (4608, 2·18432), 11% of the step went there.
#pragma once

#include "pdiff/backend/cuda/kernels/activation.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void swiglu_kernel(const T* __restrict__ x, T* __restrict__ out, std::int64_t rows, std::int64_t f,
                              std::int64_t pitch) {
  const std::int64_t n = rows * f;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / f, c = i % f;
    const T* xr = x + r * 2 * f;
    store_f(out + r * pitch + c, silu_f(load_f(xr + c)) * load_f(xr + f + c));
  }
}
template <class T>
__global__ void swiglu_vec_kernel(const T* __restrict__ x, T* __restrict__ out, std::int64_t rows, std::int64_t f,
                                  std::int64_t pitch) {
  using V = VecIo<T>;
  const std::int64_t fv = f / V::n;
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const T* xr = x + r * 2 * f;
    T* o = out + r * pitch;
    for (std::int64_t c = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < fv;
         c += std::int64_t(gridDim.x) * blockDim.x) {
      float g[V::n], u[V::n];
      V::load(xr + c * V::n, g);
      V::load(xr + f + c * V::n, u);
#pragma unroll
      for (int i = 0; i < V::n; ++i) g[i] = silu_f(g[i]) * u[i];
      V::store(o + c * V::n, g);
    }
  }
}
}  // namespace detail

// x: (rows, 2F), out: (rows, F) with rows `pitch` elements apart (pitch 0: F), device.
template <class T>
void launch_swiglu(const T* x, T* out, std::int64_t rows, std::int64_t f, cudaStream_t stream, std::int64_t pitch = 0) {
  static_assert(detail::is_kernel_type_v<T>, "launch_swiglu: T must be float or bf16");
  if (pitch == 0) pitch = f;
  PDIFF_CHECK(rows >= 0 && f > 0 && pitch >= f, "swiglu: shape (", rows, ", 2·", f, ") with output pitch ", pitch,
              " must have rows ≥ 0, F > 0 and pitch ≥ F");
  PDIFF_CHECK(rows == 0 || (x && out), "swiglu: x and out must be device pointers, got null");
  if (rows == 0) return;
  constexpr int n = detail::VecIo<T>::n;
  if (f % n == 0 && pitch % n == 0 && detail::aligned16(x) && detail::aligned16(out)) {
    const dim3 grid = detail::row_vector_grid(rows, f / n);
    detail::swiglu_vec_kernel<T><<<grid, 256, 0, stream>>>(x, out, rows, f, pitch);
  } else {
    detail::swiglu_kernel<T><<<detail::elementwise_blocks(rows * f), 256, 0, stream>>>(x, out, rows, f, pitch);
  }
  detail::check_launch("swiglu");
}

}  // namespace pdiff::cuda
