// pdiff/backend/cuda/kernels/common.cuh — what every pdiff kernel file shares: element load/store in
// fp32, vector widths, warp/block reductions, argument and launch checks.
//
// | helper                       | use                                                            |
// |------------------------------|----------------------------------------------------------------|
// | load_f(p) / store_f(p, v)    | one element of T ∈ {float, bf16} read/written as fp32 (bf16 rounded to nearest even) |
// | VecIo<T>                     | 16-byte vectors: 4 floats or 8 bf16, as fp32 arrays             |
// | warp_sum / warp_max          | butterfly reductions over the 32 lanes (every lane gets the result) |
// | block_row_sum/max            | reduction over blockDim.x threads of one row (blockDim.y rows per block) |
// | row_vector_grid(rows, n)     | grid for row-wise vector kernels: rows on y, a row's vectors on x |
// | check_launch(op)             | throws pdiff::Error naming the op when a launch failed          |
// Kernels take runtime shapes and raw device pointers; the element type is their only template
// parameter besides fixed tile shapes (STYLE.md §11).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>
#include <utility>

#include "pdiff/core/dtype.hpp"
#include "pdiff/core/error.hpp"

namespace pdiff::cuda {

namespace detail {

template <class T>
inline constexpr bool is_kernel_type_v = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

__device__ __forceinline__ float load_f(const float* p) { return *p; }
__device__ __forceinline__ float load_f(const bf16* p) {
  return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
}
__device__ __forceinline__ void store_f(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_f(bf16* p, float v) {
  *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(v);
}

// 16-byte vector of T held as fp32: n = 4 (float) or 8 (bf16). p must be 16-byte aligned.
template <class T>
struct VecIo {
  static constexpr int n = 16 / int(sizeof(T));
  __device__ __forceinline__ static void load(const T* p, float (&v)[n]) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    if constexpr (std::is_same_v<T, float>) {
      v[0] = __uint_as_float(raw.x), v[1] = __uint_as_float(raw.y);
      v[2] = __uint_as_float(raw.z), v[3] = __uint_as_float(raw.w);
    } else {
      const unsigned w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      }
    }
  }
  __device__ __forceinline__ static void store(T* p, const float (&v)[n]) {
    uint4 raw;
    if constexpr (std::is_same_v<T, float>) {
      raw = make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
    } else {
      unsigned w[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);  // .x = low half
        w[i] = *reinterpret_cast<const unsigned*>(&h);
      }
      raw = make_uint4(w[0], w[1], w[2], w[3]);
    }
    *reinterpret_cast<uint4*>(p) = raw;
  }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum (or max) over the blockDim.x threads that share threadIdx.y (one row each). blockDim.x is a
// multiple of 32 and blockDim.x·blockDim.y ≤ 1024, so at most 32 warps write `red`. All threads of
// the block must call it (it has barriers).
template <bool Max>
__device__ __forceinline__ float block_row_reduce(float v, float* red /* [32] shared */) {
  v = Max ? warp_max(v) : warp_sum(v);
  const int wpr = int(blockDim.x) >> 5;  // warps per row
  if (wpr == 1) return v;
  const int lane = int(threadIdx.x) & 31, w = int(threadIdx.x) >> 5;
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[threadIdx.y * wpr + w] = v;
  __syncthreads();
  float r = lane < wpr ? red[threadIdx.y * wpr + lane] : (Max ? -INFINITY : 0.0f);
  return Max ? warp_max(r) : warp_sum(r);
}
__device__ __forceinline__ float block_row_sum(float v, float* red) { return block_row_reduce<false>(v, red); }
__device__ __forceinline__ float block_row_max(float v, float* red) { return block_row_reduce<true>(v, red); }

inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

// Threads per row (multiple of 32, ≤ 1024) and rows per block for a row-wise kernel over rows of
// `chunks` work items: about one item per thread, blocks of ≥ 128 threads when rows are short.
struct RowGeometry {
  unsigned tx, ty;
};
inline RowGeometry row_geometry(std::int64_t chunks) {
  std::int64_t tx = (chunks + 31) / 32 * 32;
  if (tx > 1024) tx = 1024;
  if (tx < 32) tx = 32;
  std::int64_t ty = 128 / tx;
  if (ty < 1) ty = 1;
  return {unsigned(tx), unsigned(ty)};
}

// Grid for a kernel of 256-thread blocks that walks `rows` rows on grid y (stride loops past 65535) and
// `per_row` vectors of a row on grid x.
inline dim3 row_vector_grid(std::int64_t rows, std::int64_t per_row) {
  std::int64_t gx = (per_row + 255) / 256, gy = rows;
  if (gx < 1) gx = 1;
  if (gx > 65535) gx = 65535;
  if (gy < 1) gy = 1;
  if (gy > 65535) gy = 65535;
  return dim3(unsigned(gx), unsigned(gy));
}

inline void check_launch(const char* op) {
  const cudaError_t e = cudaGetLastError();
  PDIFF_CHECK(e == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(e));
}

// Grid size for an element-wise kernel of n items with 256 threads (grid-stride loops cover the rest).
inline unsigned elementwise_blocks(std::int64_t n) {
  std::int64_t b = (n + 255) / 256;
  if (b > 65535LL * 16) b = 65535LL * 16;
  return unsigned(b < 1 ? 1 : b);
}

// Lets `kernel` take `bytes` of dynamic shared memory on the current device. The cap is one setting per
// (kernel, device), shared by every host thread: thread ranks sharing a GPU must never lower it under
// another's launch (seen on an H200: two CFG<2> ranks with different key lengths, one launch refused with
// "invalid argument"), so it only grows, under a lock — and is set once rather than before every launch.
template <class Kernel>
cudaError_t raise_dynamic_smem(Kernel* kernel, int bytes) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, int> cap;
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  std::lock_guard lock(mu);
  int& now = cap[{reinterpret_cast<const void*>(kernel), device}];
  if (bytes <= now) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess) now = bytes;
  return e;
}

}  // namespace detail
}  // namespace pdiff::cuda
