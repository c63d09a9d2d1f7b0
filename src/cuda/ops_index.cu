// src/cuda/ops_index.cu — row gather and weighted scatter-add on the GPU (backend/cpu/index.hpp's
// ops): the token permutation of MoE layers. The indices come from the layer (the router's decisions),
// so they are not range-checked on the device. index_add_rows is a stable radix sort by destination and a
// segmented sum (deterministic, the CPU op's order, fp32 accumulation).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <bit>

#include "ops_common.cuh"

namespace pdiff {

namespace cuda {
namespace {
// rows on grid y / block y, a row's 16-byte vectors on grid x / block x (no division per element)
__global__ void copy_2d_kernel(uint4* dst, std::size_t dpitch, const uint4* src, std::size_t spitch, std::size_t w,
                               std::size_t h) {
  for (std::size_t r = std::size_t(blockIdx.y) * blockDim.y + threadIdx.y; r < h; r += std::size_t(gridDim.y) * blockDim.y)
    for (std::size_t c = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; c < w; c += std::size_t(gridDim.x) * blockDim.x)
      dst[r * dpitch + c] = src[r * spitch + c];
}

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // an unregistered host pointer on old drivers
    return false;
  }
  return a.type == cudaMemoryTypeDevice;
}
}  // namespace

bool copy_2d_device(void* dst, std::size_t dpitch, const void* src, std::size_t spitch, std::size_t width,
                    std::size_t height, cudaStream_t stream) {
  const auto a16 = [](std::uintptr_t v) { return v % 16 == 0; };
  if (!a16(reinterpret_cast<std::uintptr_t>(dst)) || !a16(reinterpret_cast<std::uintptr_t>(src)) || !a16(dpitch) ||
      !a16(spitch) || !a16(width) || !on_device(dst) || !on_device(src))
    return false;
  const std::size_t w = width / 16;
  const auto g = pdiff::cuda::detail::row_geometry(std::int64_t(w));
  const std::size_t bx = (w + g.tx - 1) / g.tx, by = (height + g.ty - 1) / g.ty;
  const dim3 grid(unsigned(std::min<std::size_t>(bx, 65535)), unsigned(std::min<std::size_t>(by, 65535)));
  copy_2d_kernel<<<grid, dim3(g.tx, g.ty), 0, stream>>>(static_cast<uint4*>(dst), dpitch / 16,
                                                         static_cast<const uint4*>(src), spitch / 16, w, height);
  pdiff::cuda::detail::check_launch("copy_2d");
  return true;
}
}  // namespace cuda

namespace detail {
// Block per output row, threads over its columns (no 64-bit division per element).
template <class T>
__global__ void index_rows_kernel(const T* x, const std::int32_t* idx, T* out, std::int64_t d) {
  const T* src = x + std::int64_t(idx[blockIdx.x]) * d;
  T* dst = out + std::int64_t(blockIdx.x) * d;
  for (std::int64_t c = threadIdx.x; c < d; c += blockDim.x) dst[c] = src[c];
}

__global__ void iota_kernel(std::int32_t* v, std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x)
    v[i] = std::int32_t(i);
}
// key sorted: output row key[i]'s rows are [begin, end) of the sorted order (rows no one adds to keep 0, 0).
// Keys outside [0, N) (not checked on the host) are skipped rather than written out of bounds.
__global__ void segment_bounds_kernel(const std::int32_t* key, std::int64_t n, std::int64_t N, std::int32_t* begin,
                                      std::int32_t* end) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int32_t k = key[i];
    if (k < 0 || k >= N) continue;
    if (i == 0 || key[i - 1] != k) begin[k] = std::int32_t(i);
    if (i == n - 1 || key[i + 1] != k) end[k] = std::int32_t(i + 1);
  }
}
// Output row blockIdx.x, columns from blockIdx.y: its rows added in their original order (the stable sort
// keeps it: the CPU op's order) in fp32, rounded to T once. Deterministic, no atomics.
template <class T>
__global__ void index_add_segments_kernel(T* out, const T* rows, const std::int32_t* order, const std::int32_t* begin,
                                          const std::int32_t* end, const float* w, std::int64_t d) {
  const std::int64_t r = blockIdx.x;
  const std::int32_t b = begin[r], e = end[r];
  if (b == e) return;
  for (std::int64_t c = std::int64_t(blockIdx.y) * blockDim.x + threadIdx.x; c < d; c += std::int64_t(gridDim.y) * blockDim.x) {
    float acc = to_float(out[r * d + c]);
    for (std::int32_t i = b; i < e; ++i) {
      const std::int64_t j = order[i];
      acc += w[j] * to_float(rows[j * d + c]);
    }
    out[r * d + c] = from_float<T>(acc);
  }
}
}  // namespace detail

template <class T>
CudaTensor<T> index_rows(const CudaTensor<T>& x, const CudaTensor<std::int32_t>& idx) {
  PDIFF_CHECK(x.rank() == 2 && idx.rank() == 1, "index_rows: x", x.shape(), " must be (N, D) and idx", idx.shape(), " (n)");
  const std::int64_t n = idx.numel(), d = x.size(1);
  PDIFF_CHECK(n <= std::int64_t(INT32_MAX), "index_rows: ", n, " rows exceed 2^31");
  CudaTensor<T> out({n, d});
  if (n * d == 0) return out;
  detail::index_rows_kernel<T><<<unsigned(n), 256, 0, current_cuda_stream()>>>(x.data(), idx.data(), out.data(), d);
  cuda::detail::check_launch("index_rows");
  return out;
}

// The rows sorted by destination (CUB radix sort of (idx, position), stable), each destination's segment
// found, then a block per destination row sums its segment: O(n·d) work in parallel over rows and columns,
// the same order as the CPU op.
template <class T>
void index_add_rows(CudaTensor<T>& out, const CudaTensor<T>& rows, const CudaTensor<std::int32_t>& idx,
                    const CudaTensor<float>& w) {
  const std::int64_t n = idx.numel(), d = out.size(1), N = out.size(0);
  PDIFF_CHECK(out.rank() == 2 && rows.rank() == 2 && rows.size(0) == n && rows.size(1) == d && w.numel() == n,
              "index_add_rows: out", out.shape(), ", rows", rows.shape(), ", idx", idx.shape(), " and weights",
              w.shape(), " must be (N, D), (n, D), (n), (n)");
  PDIFF_CHECK(n <= std::int64_t(INT32_MAX) && N <= std::int64_t(INT32_MAX), "index_add_rows: ", n, " rows into ", N,
              " exceed 2^31");
  if (n == 0 || d == 0) return;
  const cudaStream_t s = current_cuda_stream();
  const unsigned grid = unsigned(std::min<std::int64_t>((n + 255) / 256, 65535));
  CudaTensor<std::int32_t> pos({n}), key_sorted({n}), order({n});
  detail::iota_kernel<<<grid, 256, 0, s>>>(pos.data(), n);
  cuda::detail::check_launch("index_add_rows (positions)");
  const int bits = std::max(1, int(std::bit_width(std::uint64_t(std::max<std::int64_t>(N - 1, 0)))));
  std::size_t temp_bytes = 0;
  PDIFF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, idx.data(), key_sorted.data(), pos.data(),
                                                   order.data(), int(n), 0, bits, s));
  CudaTensor<std::uint8_t> temp({std::int64_t(std::max<std::size_t>(temp_bytes, 1))});
  PDIFF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data(), temp_bytes, idx.data(), key_sorted.data(), pos.data(),
                                                   order.data(), int(n), 0, bits, s));
  auto begin = CudaTensor<std::int32_t>::zeros({N}), end = CudaTensor<std::int32_t>::zeros({N});
  detail::segment_bounds_kernel<<<grid, 256, 0, s>>>(key_sorted.data(), n, N, begin.data(), end.data());
  cuda::detail::check_launch("index_add_rows (segments)");
  const dim3 blocks(unsigned(N), unsigned(std::min<std::int64_t>((d + 255) / 256, 65535)));
  detail::index_add_segments_kernel<T><<<blocks, 256, 0, s>>>(out.data(), rows.data(), order.data(), begin.data(),
                                                              end.data(), w.data(), d);
  cuda::detail::check_launch("index_add_rows");
}

#define PDIFF_INSTANTIATE(T)                                                                              \
  template CudaTensor<T> index_rows(const CudaTensor<T>&, const CudaTensor<std::int32_t>&);               \
  template void index_add_rows(CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<std::int32_t>&,     \
                               const CudaTensor<float>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
