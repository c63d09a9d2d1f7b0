// pdiff/backend/cpu/attention.hpp — scaled-dot-product attention on the CPU, with its log-sum-exp.
//
// | input                 | shape                         | notes                                          |
// |-----------------------|-------------------------------|------------------------------------------------|
// | q                     | (B, Sq, H, D)                 | H a multiple of Hkv (GQA: head h uses kv head h / (H/Hkv)) |
// | k, v                  | (B, Sk, Hkv, D), (B, Sk, Hkv, Dv) |                                            |
// | args.causal           |                               | key j masked for query i when k_offset+j > q_offset+i (global positions, for Ring) |
// | args.key_mask         | (B, Sk) u8, 0 = padding       |                                                |
// | args.mask             | (B or 1, Sq, Sk) u8, 0 = masked | block masks (e.g. BAGEL's per-segment masks)  |
// | result                | (B, Sq, H, Dv)                | a row whose keys are all masked is 0 with lse −inf (as PyTorch SDPA) |
// | lse (optional)        | (B, H, Sq)                    | natural log of Σ exp(scores): merges partial results |
// Scores are computed in blocks of query rows, so memory is O(block · Sk), not O(Sq · Sk).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pdiff/backend/cpu/blas.hpp"
#include "pdiff/backend/cpu/norm.hpp"
#include "pdiff/backend/cpu/vexp.hpp"
#include "pdiff/core/attn_args.hpp"

namespace pdiff {


inline CpuTensor attention(const CpuTensor& q, const CpuTensor& k, const CpuTensor& v, const AttnArgs& a = {},
                           CpuTensor* lse = nullptr) {
  const auto [B, Sq, H, D, Sk, Hkv, Dv, mask_batched] = attention_dims(q, k, v, a);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(float(D));
  const float ninf = -std::numeric_limits<float>::infinity();

  CpuTensor out({B, Sq, H, Dv});
  if (lse) *lse = CpuTensor({B, H, Sq});
  constexpr std::int64_t block = 128;
  const bool masked = a.causal || a.key_mask || a.mask;
  std::vector<float> scores(std::size_t(std::min(block, Sq) * Sk));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t hk = h / (H / Hkv);
      const float* K = k.data() + (b * Sk * Hkv + hk) * D;   // (Sk, D), row stride Hkv·D
      const float* V = v.data() + (b * Sk * Hkv + hk) * Dv;  // (Sk, Dv), row stride Hkv·Dv
      for (std::int64_t q0 = 0; q0 < Sq; q0 += block) {
        const std::int64_t nq = std::min(block, Sq - q0);
        const float* Q = q.data() + ((b * Sq + q0) * H + h) * D;  // (nq, D), row stride H·D
        detail::sgemm_rm(false, true, nq, Sk, D, scale, Q, H * D, K, Hkv * D, 0.0f, scores.data(), Sk);
        for (std::int64_t i = 0; i < nq; ++i) {
          float* row = scores.data() + i * Sk;
          const std::int64_t qi = q0 + i;
          // named copies: clang before 16 cannot capture structured bindings (the fuzz build uses clang 14)
          auto keep = [&, Sq = Sq, Sk = Sk, mask_batched = mask_batched](std::int64_t j) {
            if (a.causal && a.k_offset + j > a.q_offset + qi) return false;
            if (a.key_mask && !(*a.key_mask)(b * Sk + j)) return false;
            if (a.mask && !(*a.mask)((mask_batched ? b * Sq * Sk : 0) + qi * Sk + j)) return false;
            return true;
          };
          if (masked)
            for (std::int64_t j = 0; j < Sk; ++j)
              if (!keep(j)) row[j] = ninf;
          float mx = ninf;
          for (std::int64_t j = 0; j < Sk; ++j) mx = std::max(mx, row[j]);
          double sum = 0.0;
          if (mx == ninf) {
            for (std::int64_t j = 0; j < Sk; ++j) row[j] = 0.0f;
          } else {
            // three plain loops the compiler vectorises: exponentials (vexp: no libm call), a sum in
            // four double accumulators, the scale
            for (std::int64_t j = 0; j < Sk; ++j) row[j] = detail::vexp(row[j] - mx);
            double s4[4] = {0.0, 0.0, 0.0, 0.0};
            std::int64_t j = 0;
            for (; j + 4 <= Sk; j += 4)
              for (int u = 0; u < 4; ++u) s4[u] += double(row[j + u]);
            for (; j < Sk; ++j) s4[0] += double(row[j]);
            sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
            const float inv = float(1.0 / sum);
            for (std::int64_t jj = 0; jj < Sk; ++jj) row[jj] *= inv;
          }
          if (lse) (*lse)((b * H + h) * Sq + qi) = mx == ninf ? ninf : mx + float(std::log(sum));
        }
        detail::sgemm_rm(false, false, nq, Dv, Sk, 1.0f, scores.data(), Sk, V, Hkv * Dv, 0.0f,
                         out.data() + ((b * Sq + q0) * H + h) * Dv, H * Dv);
      }
    }
  return out;
}

// Merges a partial attention result (o, lse) over another set of keys into (acc, acc_lse), in place:
// acc = acc·e^(acc_lse − L) + o·e^(lse − L), L = log(e^acc_lse + e^lse). acc: (B, Sq, H, Dv), lse: (B, H, Sq).
inline void merge_attention(CpuTensor& acc, CpuTensor& acc_lse, const CpuTensor& o, const CpuTensor& lse) {
  PDIFF_CHECK(acc.shape() == o.shape() && acc_lse.shape() == lse.shape(), "merge_attention: partial results ",
              o.shape(), "/", lse.shape(), " must match the accumulator ", acc.shape(), "/", acc_lse.shape());
  const std::int64_t B = acc.size(0), Sq = acc.size(1), H = acc.size(2), Dv = acc.size(3);
  const float ninf = -std::numeric_limits<float>::infinity();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < Sq; ++i) {
        float& la = acc_lse((b * H + h) * Sq + i);
        const float lb = lse((b * H + h) * Sq + i);
        if (lb == ninf) continue;
        const float m = std::max(la, lb);
        const float wa = la == ninf ? 0.0f : std::exp(la - m), wb = std::exp(lb - m);
        const float L = m + std::log(wa + wb);
        const float ca = wa / (wa + wb), cb = wb / (wa + wb);
        float* pa = acc.data() + ((b * Sq + i) * H + h) * Dv;
        const float* pb = o.data() + ((b * Sq + i) * H + h) * Dv;
        for (std::int64_t d = 0; d < Dv; ++d) pa[d] = ca * pa[d] + cb * pb[d];
        la = L;
      }
}

}  // namespace pdiff
