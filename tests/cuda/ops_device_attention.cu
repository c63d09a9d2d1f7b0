// The CUDA side of the attention tests: uploads q, k, v and masks, runs the flash or the reference
// kernel, downloads out and lse.
#include "ops_device_util.cuh"
#include "pdiff/backend/cuda/kernels/attention_reference.cuh"
#include "pdiff/backend/cuda/kernels/flash_attention.cuh"

namespace pdiff::test {

DevAttnResult dev_attention(AttnKernel kernel, const DevAttnCase& c, const std::vector<float>& q,
                            const std::vector<float>& k, const std::vector<float>& v, bool want_lse) {
  auto bkm = upload_u8(c.key_mask), bm = upload_u8(c.mask);
  cuda::AttnParams p;
  p.scale = c.scale, p.causal = c.causal, p.q_offset = c.q_offset, p.k_offset = c.k_offset;
  p.key_mask = bkm.p, p.mask = bm.p, p.mask_batched = c.mask_batched;
  Buf<float> lse(want_lse ? std::size_t(c.batch * c.heads * c.sq) : 0);
  DevAttnResult r;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto bq = upload<T>(q), bk = upload<T>(k), bv = upload<T>(v);
    Buf<T> out(q.size());
    if constexpr (std::is_same_v<T, bf16>) {
      if (kernel == AttnKernel::flash) {
        cuda::launch_flash_attention(bq.p, bk.p, bv.p, out.p, lse.p, c.batch, c.sq, c.sk, c.heads, c.kv_heads,
                                     c.head_dim, p, nullptr);
        return download(out);
      }
    }
    cuda::launch_attention_reference<T>(bq.p, bk.p, bv.p, out.p, lse.p, c.batch, c.sq, c.sk, c.heads, c.kv_heads,
                                        c.head_dim, p, nullptr);
    return download(out);
  };
  r.out = kernel == AttnKernel::reference_f32 ? run(float{}) : run(bf16{});
  if (want_lse) r.lse = download(lse);
  return r;
}

}  // namespace pdiff::test
