// pdiff/layers/attention.hpp — attend<L>(rank, q, k, v, args): attention over a sequence sharded
// by the layout's sequence-parallel axes, on heads sharded by TP.
//
// | layout                | q, k, v on this rank               | communication                              |
// |-----------------------|------------------------------------|--------------------------------------------|
// | serial / TP only      | (B, S, H/tp, D)                    | none                                       |
// | Ulysses<U>            | (B, S/U, H/tp, D)                  | all_to_all seq→heads before, heads→seq after |
// | Ring<R>               | (B, S/R, H/tp, D)                  | K/V rotate R−1 times, partials merged by LSE |
// | Ulysses<U> × Ring<R>  | (B, S/(U·R), H/tp, D)              | both: Ulysses inside each ring block (USP)  |
// The sequence is split contiguously in sp order: rank with sp coordinate c = u + U·r holds tokens
// [c·S/(U·R), (c+1)·S/(U·R)) — see docs/sequence-parallel.md for the joint [text; image] rule.
// Masks and causal offsets are given in global positions (args.key_mask (B, S), args.mask (B|1, S, S));
// attend() slices them. Rules (clear errors): heads/tp divisible by U; kv heads are repeated to
// the query heads when they do not divide by U.
#pragma once

#include <algorithm>

#include <vector>

#include "pdiff/backend/cpu/attention.hpp"
#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

namespace detail {
// Repeats each kv head h_q/h_kv times: (B, S, Hkv, D) → (B, S, Hq, D).
inline Tensor<float, OnCpu> repeat_kv(const Tensor<float, OnCpu>& k, std::int64_t hq) {
  const std::int64_t B = k.size(0), S = k.size(1), hk = k.size(2), D = k.size(3), rep = hq / hk;
  Tensor<float, OnCpu> o({B, S, hq, D});
  for (std::int64_t t = 0; t < B * S; ++t)
    for (std::int64_t h = 0; h < hq; ++h) std::copy_n(k.data() + (t * hk + h / rep) * D, D, o.data() + (t * hq + h) * D);
  return o;
}

// Columns [k0, k0+nk) of a (B, S) mask.
inline Tensor<std::uint8_t, OnCpu> slice_key_mask(const Tensor<std::uint8_t, OnCpu>& m, std::int64_t k0, std::int64_t nk) {
  const std::int64_t B = m.size(0), S = m.size(1);
  Tensor<std::uint8_t, OnCpu> o({B, nk});
  for (std::int64_t b = 0; b < B; ++b) std::copy_n(m.data() + b * S + k0, nk, o.data() + b * nk);
  return o;
}
// Block [q0, q0+nq) × [k0, k0+nk) of a (B|1, S, S) mask.
inline Tensor<std::uint8_t, OnCpu> slice_mask(const Tensor<std::uint8_t, OnCpu>& m, std::int64_t q0, std::int64_t nq,
                                              std::int64_t k0, std::int64_t nk) {
  const std::int64_t B = m.size(0), Sq = m.size(1), Sk = m.size(2);
  Tensor<std::uint8_t, OnCpu> o({B, nq, nk});
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < nq; ++i) std::copy_n(m.data() + (b * Sq + q0 + i) * Sk + k0, nk, o.data() + (b * nq + i) * nk);
  return o;
}

// Attention of local queries (global offset q0) against keys at global offset k0, with the global
// masks cut to that block.
inline Tensor<float, OnCpu> attention_block(const Tensor<float, OnCpu>& q, const Tensor<float, OnCpu>& k,
                                            const Tensor<float, OnCpu>& v, const AttnArgs& g, std::int64_t q0,
                                            std::int64_t k0, Tensor<float, OnCpu>* lse) {
  AttnArgs a = g;
  a.q_offset = g.q_offset + q0;
  a.k_offset = g.k_offset + k0;
  Tensor<std::uint8_t, OnCpu> km, mm;
  if (g.key_mask) {
    km = slice_key_mask(*g.key_mask, k0, k.size(1));
    a.key_mask = &km;
  }
  if (g.mask) {
    PDIFF_CHECK(g.mask->rank() == 3, "attend: mask", g.mask->shape(), " must be (B or 1, S, S)");
    mm = slice_mask(*g.mask, q0, q.size(1), k0, k.size(1));
    a.mask = &mm;
  }
  return attention(q, k, v, a, lse);
}
}  // namespace detail

// q: (B, S_local, Hq_local, D), k/v: (B, S_local, Hkv_local, D) → (B, S_local, Hq_local, Dv).
template <class L, class R>
Tensor<float, OnCpu> attend(R& rank, Tensor<float, OnCpu> q, Tensor<float, OnCpu> k, Tensor<float, OnCpu> v,
                            const AttnArgs& args = {}) {
  constexpr int U = L::ulysses, Rg = L::ring;
  if constexpr (U > 1) {
    PDIFF_CHECK(q.size(2) % U == 0, "attend: query heads per TP rank (", q.size(2), ") must be divisible by ulysses (",
                U, "): num_heads must be divisible by tp*ulysses");
    if (k.size(2) % U != 0) {
      k = detail::repeat_kv(k, q.size(2));
      v = detail::repeat_kv(v, q.size(2));
    }
    auto& c = rank.ulysses;
    q = all_to_all(c, q, 2, 1);  // (B, S/(U·R), H, D) → (B, S/R, H/U, D)
    k = all_to_all(c, k, 2, 1);
    v = all_to_all(c, v, 2, 1);
  }
  const std::int64_t n = q.size(1);  // tokens of this ring block
  Tensor<float, OnCpu> out;
  if constexpr (Rg == 1) {
    out = detail::attention_block(q, k, v, args, 0, 0, nullptr);
  } else {
    auto& c = rank.ring;
    const int me = c.rank();
    Tensor<float, OnCpu> lse, part_lse;
    out = detail::attention_block(q, k, v, args, me * n, me * n, &lse);
    // K and V travel together: one buffer [k | v], passed to the next rank R−1 times.
    const std::int64_t nk = k.numel(), nv = v.numel();
    Tensor<float, OnCpu> kv({nk + nv}), next({nk + nv});
    std::copy_n(k.data(), nk, kv.data());
    std::copy_n(v.data(), nv, kv.data() + nk);
    std::vector<std::size_t> sc(std::size_t(Rg), 0), rc(std::size_t(Rg), 0);
    sc[std::size_t((me + 1) % Rg)] = std::size_t(nk + nv);
    rc[std::size_t((me + Rg - 1) % Rg)] = std::size_t(nk + nv);
    for (int step = 1; step < Rg; ++step) {
      c.all_to_all_v(kv.data(), std::span<const std::size_t>(sc), next.data(), std::span<const std::size_t>(rc));
      std::swap(kv, next);
      const int src = (me - step + Rg) % Rg;  // whose block we now hold
      Tensor<float, OnCpu> kb = kv.slice(0, nk).view(k.shape()), vb = kv.slice(nk, nk + nv).view(v.shape());
      auto part = detail::attention_block(q, kb, vb, args, me * n, src * n, &part_lse);
      merge_attention(out, lse, part, part_lse);
    }
  }
  if constexpr (U > 1) out = all_to_all(rank.ulysses, out, 1, 2);  // back to (B, S/(U·R), H, Dv)
  return out;
}

}  // namespace pdiff
