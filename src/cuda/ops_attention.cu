// src/cuda/ops_attention.cu — attention (with its log-sum-exp) and the LSE merge of partial results
// (Ring attention) of backend/cuda/ops.hpp.
//
// | case                                           | kernel                                        |
// |------------------------------------------------|-----------------------------------------------|
// | bf16, D = Dv ∈ {64, 128}, 16-byte aligned      | flash attention (mma.sync, kernels/flash_attention.cuh) |
// | otherwise (fp32, other head dims, e.g. the VAE's 512) | one block per query row (kernels/attention_reference.cuh) |
// Masks and offsets as the CPU op (core/attn_args.hpp); a row whose keys are all masked is 0, lse −inf.
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
    if (flash) {
      cuda::launch_flash_attention(q.data(), k.data(), v.data(), out.data(), plse, B, Sq, Sk, int(H), int(Hkv), int(D),
                                   p, s);
      return out;
    }
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
