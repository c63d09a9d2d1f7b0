// src/cuda/ops_attention.cu — attention (with its log-sum-exp) and the LSE merge of partial results
// (Ring attention) of backend/cuda/ops.hpp.
//
// | case                                           | kernel                                        |
// |------------------------------------------------|-----------------------------------------------|
// | bf16, D = Dv ∈ {64, 128}, 16-byte aligned      | flash attention (mma.sync, kernels/flash_attention.cuh) |
// | one head, no mask, not causal (the VAE mid-blocks: D = 512 / 1024, S = h·w up to 65k) | scores by an fp32 GEMM, row softmax, P·V by GEMM, query rows in chunks of ≤ 256 MiB of scores |
// | otherwise (fp32, other head dims)              | one block per query row (kernels/attention_reference.cuh) |
// Masks and offsets as the CPU op (core/attn_args.hpp); a row whose keys are all masked is 0, lse −inf.
#include <algorithm>
#include <cmath>

#include "ops_common.cuh"

#include "pdiff/backend/cuda/kernels/attention_reference.cuh"
#include "pdiff/backend/cuda/kernels/flash_attention.cuh"

namespace pdiff {

namespace detail {
// One thread per (b, h, i) query row: acc = acc·e^(la − L) + o·e^(lb − L), L = log(e^la + e^lb).
template <class T>
__global__ void merge_attention_kernel(T* acc, float* acc_lse, const T* o, const float* lse, std::int64_t sq, int heads,
                                       int dv, std::int64_t rows) {
  const std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  const std::int64_t i = r % sq, bh = r / sq, h = bh % heads, b = bh / heads;
  const float la = acc_lse[r], lb = lse[r];
  if (lb == -INFINITY) return;
  const float m = fmaxf(la, lb);
  const float wa = la == -INFINITY ? 0.0f : expf(la - m), wb = expf(lb - m);
  const float ca = wa / (wa + wb), cb = wb / (wa + wb);
  T* pa = acc + ((b * sq + i) * heads + h) * dv;
  const T* pb = o + ((b * sq + i) * heads + h) * dv;
  for (int d = 0; d < dv; ++d) pa[d] = from_float<T>(ca * to_float(pa[d]) + cb * to_float(pb[d]));
  acc_lse[r] = m + logf(wa + wb);
}

// Row r of s (rows, sk) ← softmax(scale · s[r]) in place; lse[r] = its log-sum-exp (natural log) when asked.
__global__ void softmax_rows_kernel(float* s, std::int64_t sk, float scale, float* lse) {
  __shared__ float red[32];
  float* row = s + std::int64_t(blockIdx.x) * sk;
  float mx = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < sk; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
  const float m = cuda::detail::block_row_max(mx, red);
  float sum = 0.0f;
  for (std::int64_t j = threadIdx.x; j < sk; j += blockDim.x) {
    const float e = expf(row[j] * scale - m);
    row[j] = e;
    sum += e;
  }
  const float l = cuda::detail::block_row_sum(sum, red);
  const float inv = 1.0f / l;
  for (std::int64_t j = threadIdx.x; j < sk; j += blockDim.x) row[j] *= inv;
  if (lse && threadIdx.x == 0) lse[blockIdx.x] = m + logf(l);
}

// One head without masks (the VAE's mid-block attention, D = 512 or 1024 over every latent pixel): two
// cuBLASLt GEMMs (fp32, no TF32: not on tensor cores) per chunk of query rows instead of a block per row
// re-reading K and V, and no limit on
// Sk (the reference kernel keeps a row of scores in shared memory). Scores and softmax in fp32 (q, k, v
// converted once), the output rounded to T once.
template <class T>
void attention_by_gemm(const CudaTensor<T>& q, const CudaTensor<T>& k, const CudaTensor<T>& v, CudaTensor<T>& out,
                       float* lse, std::int64_t B, std::int64_t Sq, std::int64_t Sk, std::int64_t D, float scale) {
  auto f32 = [](const CudaTensor<T>& x, std::int64_t rows, std::int64_t d) {
    if constexpr (std::is_same_v<T, float>) return x.view({rows, d});
    else return convert<float>(x).view({rows, d});
  };
  const auto qf = f32(q, B * Sq, D), kf = f32(k, B * Sk, D), vf = f32(v, B * Sk, D);
  CudaTensor<float> of;
  if constexpr (std::is_same_v<T, float>) of = out.view({B * Sq, D});
  else of = CudaTensor<float>({B * Sq, D});
  const std::int64_t chunk = std::clamp<std::int64_t>((std::int64_t(256) << 20) / (4 * Sk), 1, Sq);
  CudaTensor<float> scores({chunk, Sk});
  for (std::int64_t b = 0; b < B; ++b) {
    const auto kb = kf.slice(b * Sk, (b + 1) * Sk), vb = vf.slice(b * Sk, (b + 1) * Sk);
    for (std::int64_t i0 = 0; i0 < Sq; i0 += chunk) {
      const std::int64_t n = std::min(chunk, Sq - i0);
      auto s = scores.slice(0, n);
      gemm(qf.slice(b * Sq + i0, b * Sq + i0 + n), kb, s, {.trans_b = true});
      softmax_rows_kernel<<<unsigned(n), 256, 0, current_cuda_stream()>>>(s.data(), Sk, scale,
                                                                        lse ? lse + b * Sq + i0 : nullptr);
      cuda::detail::check_launch("attention (softmax rows)");
      auto o = of.slice(b * Sq + i0, b * Sq + i0 + n);
      gemm(s, vb, o);
    }
  }
  if constexpr (!std::is_same_v<T, float>) out = convert<T>(of).view(out.shape());
}
}  // namespace detail

template <class T>
CudaTensor<T> attention(const CudaTensor<T>& q, const CudaTensor<T>& k, const CudaTensor<T>& v,
                        const BasicAttnArgs<OnCuda>& a, CudaTensor<float>* lse) {
  const auto [B, Sq, H, D, Sk, Hkv, Dv, mask_batched] = attention_dims(q, k, v, a);
  PDIFF_CHECK(Dv == D, "attention: the CUDA kernels need v's head dim (", Dv, ") equal to q's (", D, ")");
  cuda::AttnParams p;
  p.scale = a.scale, p.causal = a.causal, p.q_offset = a.q_offset, p.k_offset = a.k_offset;
  p.key_mask = a.key_mask ? a.key_mask->data() : nullptr;
  p.mask = a.mask ? a.mask->data() : nullptr;
  p.mask_batched = mask_batched;

  CudaTensor<T> out({B, Sq, H, D});
  if (lse) *lse = CudaTensor<float>({B, H, Sq});
  float* plse = lse ? lse->data() : nullptr;
  const cudaStream_t s = current_cuda_stream();
  bool flash = false;
  if constexpr (std::is_same_v<T, bf16>)
    flash = (D == 64 || D == 128) && cuda::detail::aligned16(q.data()) && cuda::detail::aligned16(k.data()) &&
            cuda::detail::aligned16(v.data());
  if constexpr (std::is_same_v<T, bf16>) {
    // cuDNN's SDPA (the default where built; PDIFF_ATTENTION=flash opts out) where it applies: no masks,
    // causal only as top-left
    if (flash && cudnn_attention_requested() && !a.key_mask && !a.mask && (!a.causal || a.q_offset == a.k_offset) &&
        attention_cudnn(q, k, v, out, plse, a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(float(D)), a.causal))
      return out;
    if (flash) {
      cuda::launch_flash_attention(q.data(), k.data(), v.data(), out.data(), plse, B, Sq, Sk, int(H), int(Hkv), int(D),
                                   p, s);
      return out;
    }
  }
  if (H == 1 && Hkv == 1 && !a.causal && !a.key_mask && !a.mask && B > 0 && Sq > 0 && Sk > 0) {
    detail::attention_by_gemm(q, k, v, out, plse, B, Sq, Sk, D, a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(float(D)));
    return out;
  }
  cuda::launch_attention_reference<T>(q.data(), k.data(), v.data(), out.data(), plse, B, Sq, Sk, int(H), int(Hkv),
                                      int(D), p, s);
  return out;
}

template <class T>
void merge_attention(CudaTensor<T>& acc, CudaTensor<float>& acc_lse, const CudaTensor<T>& o,
                     const CudaTensor<float>& lse) {
  PDIFF_CHECK(acc.rank() == 4 && acc.shape() == o.shape() && acc_lse.shape() == lse.shape() &&
                  lse.numel() == acc.size(0) * acc.size(1) * acc.size(2),
              "merge_attention: partial results ", o.shape(), "/", lse.shape(), " must match the accumulator ",
              acc.shape(), "/", acc_lse.shape());
  const std::int64_t rows = lse.numel();
  if (rows == 0) return;
  detail::merge_attention_kernel<T><<<unsigned((rows + 255) / 256), 256, 0, current_cuda_stream()>>>(
      acc.data(), acc_lse.data(), o.data(), lse.data(), acc.size(1), int(acc.size(2)), int(acc.size(3)), rows);
  cuda::detail::check_launch("merge_attention");
}

#define PDIFF_INSTANTIATE(T)                                                                             \
  template CudaTensor<T> attention(const CudaTensor<T>&, const CudaTensor<T>&, const CudaTensor<T>&,     \
                                   const BasicAttnArgs<OnCuda>&, CudaTensor<float>*);                    \
  template void merge_attention(CudaTensor<T>&, CudaTensor<float>&, const CudaTensor<T>&, const CudaTensor<float>&);
PDIFF_CUDA_OPS_FOR_TYPES(PDIFF_INSTANTIATE)
#undef PDIFF_INSTANTIATE

}  // namespace pdiff
