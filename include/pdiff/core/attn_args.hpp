// pdiff/core/attn_args.hpp — BasicAttnArgs<B>: the options of attention() on backend B, the same
// fields on every backend (AttnArgs is the CPU one). Masks live where the tensors do.
//
// | field              | meaning                                                                    |
// |--------------------|----------------------------------------------------------------------------|
// | scale              | 0: 1/sqrt(D)                                                               |
// | causal             | key j masked for query i when k_offset + j > q_offset + i (global positions, for Ring) |
// | key_mask           | (B, Sk) u8, 0 = padding                                                    |
// | mask               | (B or 1, Sq, Sk) u8, 0 = masked (block masks, e.g. BAGEL's per-segment masks) |
#pragma once

#include <cstdint>

#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class B>
struct BasicAttnArgs {
  float scale = 0.0f;  // 0: 1/sqrt(D)
  bool causal = false;
  std::int64_t q_offset = 0, k_offset = 0;
  const Tensor<std::uint8_t, B>* key_mask = nullptr;
  const Tensor<std::uint8_t, B>* mask = nullptr;
};
using AttnArgs = BasicAttnArgs<OnCpu>;

// The sizes of an attention call, checked against the shapes and masks the same way on every backend.
struct AttnDims {
  std::int64_t B = 0, Sq = 0, H = 0, D = 0, Sk = 0, Hkv = 0, Dv = 0;
  bool mask_batched = false;  // mask is (B, Sq, Sk), not (1, Sq, Sk)
};

template <class T, class B>
AttnDims attention_dims(const Tensor<T, B>& q, const Tensor<T, B>& k, const Tensor<T, B>& v,
                        const BasicAttnArgs<B>& a) {
  PDIFF_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4, "attention: q", q.shape(), " k", k.shape(), " v",
              v.shape(), " must be (B, S, H, D)");
  AttnDims d{q.size(0), q.size(1), q.size(2), q.size(3), k.size(1), k.size(2), v.size(3)};
  PDIFF_CHECK(k.size(0) == d.B && v.size(0) == d.B && k.size(3) == d.D && v.size(1) == d.Sk && v.size(2) == d.Hkv,
              "attention: k", k.shape(), " and v", v.shape(), " do not fit q", q.shape());
  PDIFF_CHECK(d.Hkv > 0 && d.H % d.Hkv == 0, "attention: query heads (", d.H, ") must be a multiple of kv heads (",
              d.Hkv, ")");
  if (a.key_mask)
    PDIFF_CHECK(a.key_mask->numel() == d.B * d.Sk, "attention: key_mask", a.key_mask->shape(), " must be (B, Sk) = (",
                d.B, ", ", d.Sk, ")");
  d.mask_batched = a.mask && a.mask->numel() == d.B * d.Sq * d.Sk;
  if (a.mask)
    PDIFF_CHECK(d.mask_batched || a.mask->numel() == d.Sq * d.Sk, "attention: mask", a.mask->shape(),
                " must be (B or 1, Sq, Sk) = (", d.B, ", ", d.Sq, ", ", d.Sk, ")");
  return d;
}

}  // namespace pdiff
