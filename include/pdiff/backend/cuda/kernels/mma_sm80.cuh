// pdiff/backend/cuda/kernels/mma_sm80.cuh — the sm_80 tensor-core and async-copy instructions the
// attention kernel is built from (also valid on sm_90a), as thin inline-PTX wrappers.
//
// | wrapper              | PTX                                                   | operands                          |
// |----------------------|-------------------------------------------------------|-----------------------------------|
// | cp_async_16          | cp.async.cg.shared.global, 16 B, src-size 0 zero-fills | smem dst, gmem src, bytes (0/16)  |
// | cp_async_commit/wait | cp.async.commit_group / wait_group N                   |                                   |
// | ldmatrix_x4(_trans)  | ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16       | lane l gives the row address of matrix l/8 |
// | mma_bf16_16816       | mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32    | A 4×b32, B 2×b32, C/D 4×f32 (in place) |
// | pack_bf16x2          | cvt.rn.bf16x2.f32                                      | lo → bits 0..15, hi → bits 16..31 |
// Fragment layouts (PTX ISA, m16n8k16, g = lane/4, t = lane%4): A a0:(g, 2t..2t+1) a1:(g+8, 2t..)
// a2:(g, 2t+8..) a3:(g+8, 2t+8..); B b0:(k 2t..2t+1, n g) b1:(k 2t+8.., n g); C c0,c1:(g, 2t, 2t+1)
// c2,c3:(g+8, 2t, 2t+1).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace pdiff::cuda::detail {

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(src_bytes)
               : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
#else
  __trap();
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem)));
#else
  __trap();
#endif
}

// d += a·b for one 16×8×16 tile.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                               std::uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

__device__ __forceinline__ std::uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x (low 16 bits) = lo
  return *reinterpret_cast<const std::uint32_t*>(&h);
}

}  // namespace pdiff::cuda::detail
