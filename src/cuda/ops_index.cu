// src/cuda/ops_index.cu — row gather and weighted scatter-add on the GPU (backend/cpu/index.hpp's
// ops): the token permutation of MoE layers. The indices come from the layer (built on the host
// from the router's decisions), so they are not range-checked on the device.
#include "ops_common.cuh"

namespace pdiff {

namespace detail {
template <class T>
__global__ void index_rows_kernel(const T* x, const std::int32_t* idx, T* out, std::int64_t n, std::int64_t d) {
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n * d;
       i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = x[std::int64_t(idx[i / d]) * d + i % d];
}
// One thread per column walks the rows in order: deterministic (the CPU op's order), no atomics.
template <class T>
__global__ void index_add_rows_kernel(T* out, const T* rows, const std::int32_t* idx, const float* w, std::int64_t n,
                                      std::int64_t d) {
  const std::int64_t c = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (c >= d) return;
  for (std::int64_t i = 0; i < n; ++i) {
    T* o = out + std::int64_t(idx[i]) * d + c;
    *o = from_float<T>(to_float(*o) + w[i] * to_float(rows[i * d + c]));
  }
}
}  // namespace detail

template <class T>
CudaTensor<T> index_rows(const CudaTensor<T>& x, const CudaTensor<std::int32_t>& idx) {
  PDIFF_CHECK(x.rank() == 2 && idx.rank() == 1, "index_rows: x", x.shape(), " must be (N, D) and idx", idx.shape(), " (n)");
  const std::int64_t n = idx.numel(), d = x.size(1);
  CudaTensor<T> out({n, d});
  if (n * d == 0) return out;
  detail::index_rows_kernel<T><<<unsigned(std::min<std::int64_t>((n * d + 255) / 256, 65535)), 256, 0,
                                 current_cuda_stream()>>>(x.data(), idx.data(), out.data(), n, d);
  cuda::detail::check_launch("index_rows");
  return out;
}

template <class T>
void index_add_rows(CudaTensor<T>& out, const CudaTensor<T>& rows, const CudaTensor<std::int32_t>& idx,
                    const CudaTensor<float>& w) {
  const std::int64_t n = idx.numel(), d = out.size(1);
  PDIFF_CHECK(out.rank() == 2 && rows.rank() == 2 && rows.size(0) == n && rows.size(1) == d && w.numel() == n,
              "index_add_rows: out", out.shape(), ", rows", rows.shape(), ", idx", idx.shape(), " and weights",
              w.shape(), " must be (N, D), (n, D), (n), (n)");
  if (n == 0 || d == 0) return;
  detail::index_add_rows_kernel<T><<<unsigned((d + 127) / 128), 128, 0, current_cuda_stream()>>>(
      out.data(), rows.data(), idx.data(), w.data(), n, d);
  cuda::detail::check_launch("index_add_rows");
}

#define PDIFF_INSTANTIATE(T)                                                                              \
  template CudaTensor<T> index_rows(const CudaTensor<T>&, const CudaTensor<std::int32_t>&);               \
  template void index_add_rows(CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<std::int32_t>&,     \
                               const CudaTensor<float>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
