// pdiff/backend/cuda/kernels/flash_attention.cuh — FlashAttention-2 style forward on tensor cores
// (mma.sync m16n8k16 bf16, sm_80 and sm_90a), mirroring backend/cpu/attention.hpp.
//
// | input / case    | shape                 | notes                                                    |
// |-----------------|-----------------------|----------------------------------------------------------|
// | q               | (B, Sq, H, D) bf16    | D ∈ {64, 128}                                            |
// | k, v            | (B, Sk, Hkv, D) bf16  | GQA: head h reads kv head h / (H/Hkv)                    |
// | out             | (B, Sq, H, D) bf16    | fully masked row → 0                                     |
// | lse (optional)  | (B, H, Sq) fp32       | natural log of Σ exp(scale·q·k) over kept keys; −inf if none |
// | AttnParams      | attention_params.cuh  | scale, causal with offsets, key_mask (B, Sk), mask (B|1, Sq, Sk) |
// | tails           | any Sq, Sk ≥ 0        | rows ≥ Sq zero-loaded and not stored; keys ≥ Sk zero-filled and masked |
//
// Design: a block of 8 warps owns 128 query rows of one (b, h) (each warp 16 rows, its Q fragments
// held in registers for the whole loop); K and V tiles of 64 keys are double-buffered in shared memory
// with cp.async (the next K tile loads while S = QKᵀ is computed, the next V tile while O += PV is).
// S is kept in mma accumulators, the online softmax runs on them in the exp2 domain (scale·log2 e
// folded into one multiply), and P is re-packed from the accumulator layout into A fragments without
// touching shared memory. Shared rows are 16-byte chunks XOR-swizzled by (row mod 8) so ldmatrix and
// cp.async are conflict-free. Causal blocks past the diagonal are skipped; the heaviest query tiles
// are scheduled first. Output goes through shared memory to 16-byte stores.
#pragma once

#include <cmath>
#include <cstdint>

#include "pdiff/backend/cuda/kernels/attention_params.cuh"
#include "pdiff/backend/cuda/kernels/common.cuh"
#include "pdiff/backend/cuda/kernels/mma_sm80.cuh"

namespace pdiff::cuda {

namespace detail {

struct FlashArgs {
  const bf16* q;
  const bf16* k;
  const bf16* v;
  bf16* o;
  float* lse;
  const std::uint8_t* key_mask;
  const std::uint8_t* mask;
  std::int64_t q_bstride, k_bstride;  // elements between batch entries (q and o share theirs)
  std::int64_t q_sstride, k_sstride;  // elements between sequence positions: H·D, Hkv·D
  std::int64_t q_offset, k_offset;
  int sq, sk, heads, group;  // group = H / Hkv
  float scale_log2;          // scale · log2(e)
  bool causal, mask_batched;
};

constexpr int kFlashRows = 128, kFlashKeys = 64, kFlashWarps = 8, kFlashThreads = 32 * kFlashWarps;

template <int D>
constexpr int flash_smem_bytes() {
  return (kFlashRows + 4 * kFlashKeys) * D * 2;  // Q + 2 K buffers + 2 V buffers, bf16
}

// Element offset of chunk c (8 bf16) of row r in a swizzled tile with D columns.
template <int D>
__device__ __forceinline__ int swz(int r, int c) {
  return r * D + ((c ^ (r & 7)) << 3);
}

// Copies rows [0, ROWS) of a tile (row i at g + i·stride) into shared memory; rows ≥ valid are zeros.
// `fallback` is any readable address (never read: src-size 0), so no pointer past the tensor is formed.
template <int D, int ROWS>
__device__ __forceinline__ void flash_load_tile(bf16* s, const bf16* g, std::int64_t stride, int valid,
                                                const bf16* fallback, int tid) {
  constexpr int kChunks = D / 8, kTotal = ROWS * kChunks;
  static_assert(kTotal % kFlashThreads == 0, "tile chunks must divide evenly among the threads");
#pragma unroll
  for (int it = 0; it < kTotal / kFlashThreads; ++it) {
    const int idx = it * kFlashThreads + tid, r = idx / kChunks, c = idx % kChunks;
    const bool ok = r < valid;
    cp_async_16(s + swz<D>(r, c), ok ? g + r * stride + c * 8 : fallback, ok ? 16 : 0);
  }
}

template <int D>
__global__ void __launch_bounds__(kFlashThreads) flash_attention_fwd_kernel(const FlashArgs a) {
  constexpr int Br = kFlashRows, Bc = kFlashKeys;
  constexpr int KQ = D / 16;   // k-steps of S = QKᵀ
  constexpr int NS = Bc / 8;   // n-tiles of S
  constexpr int KP = Bc / 16;  // k-steps of O += PV
  constexpr int NO = D / 8;    // n-tiles of O
  extern __shared__ __align__(128) unsigned char flash_smem[];
  bf16* sQ = reinterpret_cast<bf16*>(flash_smem);
  bf16* sK = sQ + Br * D;      // 2 buffers of Bc·D
  bf16* sV = sK + 2 * Bc * D;  // 2 buffers of Bc·D

  const int tid = int(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t = lane & 3;
  const int m_block = int(gridDim.x) - 1 - int(blockIdx.x);  // causal: longest rows first
  const int h = int(blockIdx.y), b = int(blockIdx.z), hk = h / a.group;
  const int q0 = m_block * Br;

  const bf16* qg = a.q + b * a.q_bstride + std::int64_t(q0) * a.q_sstride + std::int64_t(h) * D;
  const bf16* kg = a.k + b * a.k_bstride + std::int64_t(hk) * D;
  const bf16* vg = a.v + b * a.k_bstride + std::int64_t(hk) * D;

  // Keys [0, kv_end) can be visible to some row of this tile.
  int kv_end = a.sk;
  if (a.causal) {
    const std::int64_t last_row = std::int64_t(min(q0 + Br, a.sq) - 1);
    const std::int64_t lim = a.q_offset + last_row - a.k_offset + 1;
    kv_end = int(lim < 0 ? 0 : (lim < a.sk ? lim : a.sk));
  }
  const int n_blocks = (kv_end + Bc - 1) / Bc;

  flash_load_tile<D, Br>(sQ, qg, a.q_sstride, a.sq - q0, a.q, tid);
  if (n_blocks > 0) flash_load_tile<D, Bc>(sK, kg, a.k_sstride, a.sk, a.k, tid);
  cp_async_commit();
  if (n_blocks > 0) flash_load_tile<D, Bc>(sV, vg, a.k_sstride, a.sk, a.v, tid);
  cp_async_commit();

  std::uint32_t qf[KQ][4];
  float o[NO][4];
#pragma unroll
  for (int i = 0; i < NO; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};  // rows g and g+8, log2 domain

  for (int kb = 0; kb < n_blocks; ++kb) {
    const int cur = kb & 1;
    const int k0 = kb * Bc;
    cp_async_wait<1>();  // Q and K[kb] landed (V[kb] may still fly)
    __syncthreads();
    if (kb == 0) {
#pragma unroll
      for (int kc = 0; kc < KQ; ++kc) ldmatrix_x4(qf[kc], sQ + swz<D>(warp * 16 + (lane & 15), kc * 2 + (lane >> 4)));
    }
    if (kb + 1 < n_blocks)
      flash_load_tile<D, Bc>(sK + (cur ^ 1) * Bc * D, kg + std::int64_t(k0 + Bc) * a.k_sstride, a.k_sstride,
                             a.sk - (k0 + Bc), a.k, tid);
    cp_async_commit();

    // S = Q Kᵀ: (16 × Bc) per warp.
    float s[NS][4];
#pragma unroll
    for (int i = 0; i < NS; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
    const bf16* sKc = sK + cur * Bc * D;
#pragma unroll
    for (int kc = 0; kc < KQ; ++kc) {
#pragma unroll
      for (int np = 0; np < NS / 2; ++np) {
        std::uint32_t kf[4];  // n-tile 2np: kf[0], kf[1]; n-tile 2np+1: kf[2], kf[3]
        const int mi = lane >> 3;
        ldmatrix_x4(kf, sKc + swz<D>(np * 16 + (mi >> 1) * 8 + (lane & 7), kc * 2 + (mi & 1)));
        mma_bf16_16816(s[2 * np], qf[kc], kf[0], kf[1]);
        mma_bf16_16816(s[2 * np + 1], qf[kc], kf[2], kf[3]);
      }
    }

    // Masks (block-uniform test first, so unmasked blocks pay nothing).
    const bool need_mask = k0 + Bc > a.sk || a.key_mask || a.mask ||
                           (a.causal && a.k_offset + k0 + Bc - 1 > a.q_offset + q0);
    if (need_mask) {
#pragma unroll
      for (int nt = 0; nt < NS; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int j = k0 + nt * 8 + 2 * t + (i & 1);
          const std::int64_t qi = q0 + warp * 16 + g + 8 * (i >> 1);
          bool keep = j < a.sk;
          if (keep && a.causal) keep = a.k_offset + j <= a.q_offset + qi;
          if (keep && a.key_mask) keep = a.key_mask[std::int64_t(b) * a.sk + j] != 0;
          if (keep && a.mask && qi < a.sq)
            keep = a.mask[(a.mask_batched ? std::int64_t(b) * a.sq * a.sk : 0) + qi * a.sk + j] != 0;
          if (!keep) s[nt][i] = -INFINITY;
        }
    }

    // Online softmax, rows g (r = 0: elements 0, 1) and g+8 (r = 1: elements 2, 3).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = m_r[r];
#pragma unroll
      for (int nt = 0; nt < NS; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]) * a.scale_log2);
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_use = mx == -INFINITY ? 0.0f : mx;  // all masked so far: avoid −inf − (−inf)
      const float alpha = exp2f(m_r[r] - m_use);
      m_r[r] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < NS; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = exp2f(s[nt][2 * r + e] * a.scale_log2 - m_use);
          s[nt][2 * r + e] = p;
          sum += p;
        }
      l_r[r] = l_r[r] * alpha + sum;  // per-thread partial; the quad is summed at the end
#pragma unroll
      for (int nt = 0; nt < NO; ++nt) {
        o[nt][2 * r] *= alpha;
        o[nt][2 * r + 1] *= alpha;
      }
    }

    // P: accumulator layout of n-tiles (2kc, 2kc+1) is the A layout of k-step kc.
    std::uint32_t pf[KP][4];
#pragma unroll
    for (int kc = 0; kc < KP; ++kc) {
      pf[kc][0] = pack_bf16x2(s[2 * kc][0], s[2 * kc][1]);
      pf[kc][1] = pack_bf16x2(s[2 * kc][2], s[2 * kc][3]);
      pf[kc][2] = pack_bf16x2(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      pf[kc][3] = pack_bf16x2(s[2 * kc + 1][2], s[2 * kc + 1][3]);
    }

    cp_async_wait<1>();  // V[kb] landed (K[kb+1] may still fly)
    __syncthreads();
    if (kb + 1 < n_blocks)
      flash_load_tile<D, Bc>(sV + (cur ^ 1) * Bc * D, vg + std::int64_t(k0 + Bc) * a.k_sstride, a.k_sstride,
                             a.sk - (k0 + Bc), a.v, tid);
    cp_async_commit();

    // O += P V: V rows are keys, so B fragments come from ldmatrix.trans.
    const bf16* sVc = sV + cur * Bc * D;
#pragma unroll
    for (int kc = 0; kc < KP; ++kc) {
#pragma unroll
      for (int dp = 0; dp < NO / 2; ++dp) {
        std::uint32_t vf[4];  // d-tile 2dp: vf[0], vf[1]; d-tile 2dp+1: vf[2], vf[3]
        const int mi = lane >> 3;
        ldmatrix_x4_trans(vf, sVc + swz<D>(kc * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1)));
        mma_bf16_16816(o[2 * dp], pf[kc], vf[0], vf[1]);
        mma_bf16_16816(o[2 * dp + 1], pf[kc], vf[2], vf[3]);
      }
    }
  }

  // Epilogue: normalise, stage this warp's 16 rows in sQ (no other warp touches them), store.
  cp_async_wait<0>();  // with n_blocks = 0 the Q copies may still be landing in sQ
  __syncthreads();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = l_r[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const int row = warp * 16 + g + 8 * r;
#pragma unroll
    for (int nt = 0; nt < NO; ++nt)
      *reinterpret_cast<std::uint32_t*>(sQ + swz<D>(row, nt) + 2 * t) =
          pack_bf16x2(o[nt][2 * r] * inv, o[nt][2 * r + 1] * inv);
    const int qi = q0 + row;
    if (a.lse && t == 0 && qi < a.sq)
      a.lse[(std::int64_t(b) * a.heads + h) * a.sq + qi] =
          l > 0.0f ? (m_r[r] + log2f(l)) * 0.6931471805599453f : -INFINITY;
  }
  __syncwarp();
  constexpr int kChunks = D / 8;
  bf16* og = a.o + b * a.q_bstride + std::int64_t(h) * D;
#pragma unroll
  for (int it = 0; it < 16 * kChunks / 32; ++it) {
    const int idx = it * 32 + lane, rr = idx / kChunks, c = idx % kChunks;
    const int row = warp * 16 + rr, qi = q0 + row;
    if (qi < a.sq)
      *reinterpret_cast<uint4*>(og + std::int64_t(qi) * a.q_sstride + c * 8) =
          *reinterpret_cast<const uint4*>(sQ + swz<D>(row, c));
  }
}

template <int D>
void flash_attention_dispatch(const FlashArgs& a, int batch, cudaStream_t stream) {
  constexpr int bytes = flash_smem_bytes<D>();
  const cudaError_t e = raise_dynamic_smem(flash_attention_fwd_kernel<D>, bytes);
  PDIFF_CHECK(e == cudaSuccess, "flash_attention: cannot reserve ", bytes, " bytes of shared memory: ",
              cudaGetErrorString(e));
  const dim3 grid(unsigned((a.sq + kFlashRows - 1) / kFlashRows), unsigned(a.heads), unsigned(batch));
  flash_attention_fwd_kernel<D><<<grid, kFlashThreads, bytes, stream>>>(a);
}

}  // namespace detail

// q, out: (B, Sq, H, D) bf16; k, v: (B, Sk, Hkv, D) bf16; lse: (B, H, Sq) fp32 or nullptr. Device
// pointers, 16-byte aligned. D ∈ {64, 128}.
inline void launch_flash_attention(const bf16* q, const bf16* k, const bf16* v, bf16* out, float* lse,
                                   std::int64_t batch, std::int64_t sq, std::int64_t sk, int heads, int kv_heads,
                                   int head_dim, const AttnParams& p, cudaStream_t stream) {
  PDIFF_CHECK(head_dim == 64 || head_dim == 128, "flash_attention: head_dim ", head_dim,
              " not supported (64, 128)");
  PDIFF_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0, "flash_attention: query heads (", heads,
              ") must be a positive multiple of kv heads (", kv_heads, ")");
  PDIFF_CHECK(batch >= 0 && sq >= 0 && sk >= 0, "flash_attention: B (", batch, "), Sq (", sq, ") and Sk (", sk,
              ") must be ≥ 0");
  PDIFF_CHECK(batch <= 65535 && heads <= 65535, "flash_attention: B (", batch, ") and H (", heads,
              ") must be ≤ 65535 (grid limits)");
  PDIFF_CHECK(sq < (std::int64_t(1) << 31) - detail::kFlashRows && sk < (std::int64_t(1) << 31) - detail::kFlashKeys,
              "flash_attention: Sq (", sq, ") and Sk (", sk, ") must fit in 31 bits");
  PDIFF_CHECK(p.scale >= 0.0f && std::isfinite(p.scale), "flash_attention: scale (", p.scale,
              ") must be finite and ≥ 0 (0 means 1/sqrt(D))");
  if (batch == 0 || sq == 0) return;
  PDIFF_CHECK(q && k && v && out, "flash_attention: q, k, v and out must be device pointers, got null");
  PDIFF_CHECK(detail::aligned16(q) && detail::aligned16(k) && detail::aligned16(v) && detail::aligned16(out),
              "flash_attention: q, k, v and out must be 16-byte aligned (cp.async and vector stores)");
  detail::FlashArgs a{};
  a.q = q, a.k = k, a.v = v, a.o = out, a.lse = lse;
  a.key_mask = p.key_mask, a.mask = p.mask;
  a.q_sstride = std::int64_t(heads) * head_dim, a.k_sstride = std::int64_t(kv_heads) * head_dim;
  a.q_bstride = sq * a.q_sstride, a.k_bstride = sk * a.k_sstride;
  a.q_offset = p.q_offset, a.k_offset = p.k_offset;
  a.sq = int(sq), a.sk = int(sk), a.heads = heads, a.group = heads / kv_heads;
  const float scale = p.scale > 0.0f ? p.scale : 1.0f / std::sqrt(float(head_dim));
  a.scale_log2 = scale * 1.4426950408889634f;
  a.causal = p.causal, a.mask_batched = p.mask_batched;
  if (head_dim == 64) detail::flash_attention_dispatch<64>(a, int(batch), stream);
  else detail::flash_attention_dispatch<128>(a, int(batch), stream);
  detail::check_launch("flash_attention");
}

}  // namespace pdiff::cuda
