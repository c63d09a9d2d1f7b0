// pdiff/backend/cuda/kernels/softmax.cuh — softmax over the last dimension on CUDA.
//
// | case              | x, out      | result                                            |
// |-------------------|-------------|---------------------------------------------------|
// | softmax           | (rows, N)   | e^(s·x − m) / Σ e^(s·x − m), m = max(s·x), s = 1   |
// | softmax, scaled   | (rows, N)   | the same with s = scale                            |
// | all −inf row      | (rows, N)   | zeros (as the CPU attention treats a fully masked row) |
// T ∈ {float, bf16}, fp32 math. One pass keeps a running (max, sum) per thread, merged across the
// row; a second pass writes. out may equal x.
#pragma once

#include "pdiff/backend/cuda/kernels/common.cuh"

namespace pdiff::cuda {

namespace detail {
template <class T>
__global__ void softmax_kernel(const T* x, T* out, std::int64_t rows, int n, float scale) {
  __shared__ float red[32];
  const std::int64_t row = std::int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < rows;
  const T* xr = x + (valid ? row : 0) * n;
  T* orow = out + (valid ? row : 0) * n;
  float m = -INFINITY, l = 0.0f;
  if (valid)
    for (int c = int(threadIdx.x); c < n; c += int(blockDim.x)) {
      const float v = scale * load_f(xr + c);
      if (v > m) {
        l = l * expf(m - v) + 1.0f;  // m = −inf first: e^−inf = 0
        m = v;
      } else if (v != -INFINITY) {
        l += expf(v - m);
      }
    }
  const float bm = block_row_max(m, red);
  const float bl = block_row_sum(m == -INFINITY ? 0.0f : l * expf(m - bm), red);
  if (!valid) return;
  const float inv = bm == -INFINITY ? 0.0f : 1.0f / bl;
  for (int c = int(threadIdx.x); c < n; c += int(blockDim.x)) {
    const float v = scale * load_f(xr + c);
    store_f(orow + c, bm == -INFINITY ? 0.0f : expf(v - bm) * inv);
  }
}
}  // namespace detail

// x, out: (rows, N) device; scale multiplies x before the exponent (1 for a plain softmax).
template <class T>
void launch_softmax(const T* x, T* out, std::int64_t rows, int n, float scale, cudaStream_t stream) {
  static_assert(detail::is_kernel_type_v<T>, "launch_softmax: T must be float or bf16");
  PDIFF_CHECK(rows >= 0 && n > 0, "softmax: shape (", rows, ", ", n, ") must have rows ≥ 0 and N > 0");
  PDIFF_CHECK(rows == 0 || (x && out), "softmax: x and out must be device pointers, got null");
  PDIFF_CHECK(scale > 0.0f, "softmax: scale (", scale, ") must be positive");
  if (rows == 0) return;
  const auto g = detail::row_geometry((n + 3) / 4);
  const std::int64_t blocks = (rows + g.ty - 1) / g.ty;
  PDIFF_CHECK(blocks <= 0x7fffffff, "softmax: ", rows, " rows exceed the grid limit");
  detail::softmax_kernel<T><<<unsigned(blocks), dim3(g.tx, g.ty), 0, stream>>>(x, out, rows, n, scale);
  detail::check_launch("softmax");
}

}  // namespace pdiff::cuda
