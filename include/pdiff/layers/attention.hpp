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
// One code for every backend: the ops resolve by the tensors' type, the collectives need a
// communicator that accepts the tensors' memory.
// A key/value prefix (KvPrefix: the cached K/V of P tokens before the sequence, whole on every sequence
// rank, this TP rank's KV heads) is attended by every query as keys [0, P); the sequence's own keys
// then sit at [P, P + S) in the masks' key coordinates (args.mask (B|1, S, P + S)). This is how a
// model with a fixed causal prefix (a prompt) computes only the tokens after it on later steps.
#pragma once

#include <algorithm>

#include <vector>

#include "pdiff/backend/ops.hpp"
#include "pdiff/comm/tensor_collectives.hpp"
#include "pdiff/parallel/axis_comm.hpp"

namespace pdiff {

namespace detail {
// Attention of local queries (global offset q0) against keys at global offset k0, with the global
// masks cut to that block.
template <class T, class B>
Tensor<T, B> attention_block(const Tensor<T, B>& q, const Tensor<T, B>& k, const Tensor<T, B>& v,
                             const BasicAttnArgs<B>& g, std::int64_t q0, std::int64_t k0,
                             std::type_identity_t<Tensor<float, B>>* lse) {
  BasicAttnArgs<B> a = g;
  a.q_offset = g.q_offset + q0;
  a.k_offset = g.k_offset + k0;
  Tensor<std::uint8_t, B> km, mm;
  if (g.key_mask) {
    km = narrow(*g.key_mask, 1, k0, k.size(1));  // (B, Sk) → this key block's columns
    a.key_mask = &km;
  }
  if (g.mask) {
    PDIFF_CHECK(g.mask->rank() == 3, "attend: mask", g.mask->shape(), " must be (B or 1, S, S)");
    mm = narrow(narrow(*g.mask, 1, q0, q.size(1)), 2, k0, k.size(1));  // the (q block) × (key block) tile
    a.mask = &mm;
  }
  return attention(q, k, v, a, lse);
}
}  // namespace detail

// K/V of P tokens before the sequence: (B, P, Hkv_local, D) each, the same on every sequence rank.
template <class T, class B>
struct KvPrefix {
  Tensor<T, B> k, v;
  std::int64_t length() const { return k.rank() == 4 ? k.size(1) : 0; }
};

// q: (B, S_local, Hq_local, D), k/v: (B, S_local, Hkv_local, D) → (B, S_local, Hq_local, Dv).
template <class L, class R, class T, class B>
Tensor<T, B> attend(R& rank, Tensor<T, B> q, Tensor<T, B> k, Tensor<T, B> v, const BasicAttnArgs<B>& args = {},
                    const KvPrefix<T, B>* prefix = nullptr) {
  constexpr int U = L::ulysses, Rg = L::ring;
  const std::int64_t P = prefix ? prefix->length() : 0;
  Tensor<T, B> pk, pv;  // the prefix's heads this rank attends with
  if (P > 0) pk = prefix->k, pv = prefix->v;
  if constexpr (U > 1) {
    PDIFF_CHECK(q.size(2) % U == 0, "attend: query heads per TP rank (", q.size(2), ") must be divisible by ulysses (",
                U, "): num_heads must be divisible by tp*ulysses");
    if (k.size(2) % U != 0) {
      k = repeat_heads(k, q.size(2));
      v = repeat_heads(v, q.size(2));
      if (P > 0) pk = repeat_heads(pk, q.size(2)), pv = repeat_heads(pv, q.size(2));
    }
    auto& c = rank.ulysses;
    q = all_to_all(c, q, 2, 1);  // (B, S/(U·R), H, D) → (B, S/R, H/U, D)
    k = all_to_all(c, k, 2, 1);
    v = all_to_all(c, v, 2, 1);
    if (P > 0) {  // all_to_all gave this rank head group c.rank() of U
      const std::int64_t h = pk.size(2) / U;
      pk = narrow(pk, 2, c.rank() * h, h), pv = narrow(pv, 2, c.rank() * h, h);
    }
  }
  const std::int64_t n = q.size(1);  // tokens of this ring block
  Tensor<T, B> out;
  if constexpr (Rg == 1) {
    if (P > 0) k = cat(pk, k, 1), v = cat(pv, v, 1);  // keys [prefix; sequence]: one block
    out = detail::attention_block(q, k, v, args, 0, 0, nullptr);
  } else {
    auto& c = rank.ring;
    detail::check_comm_memory<std::remove_cvref_t<decltype(c)>, B>();
    const int me = c.rank();
    Tensor<float, B> lse, part_lse;
    out = detail::attention_block(q, k, v, args, me * n, P + me * n, &lse);
    if (P > 0) {  // the prefix: one more key block, already on every rank
      auto part = detail::attention_block(q, pk, pv, args, me * n, 0, &part_lse);
      merge_attention(out, lse, part, part_lse);
    }
    // K and V travel together: one buffer [k | v], passed to the next rank R−1 times.
    const std::int64_t nk = k.numel(), nv = v.numel();
    Tensor<T, B> kv = cat(k.view({nk}), v.view({nv}), 0), next({nk + nv});
    std::vector<std::size_t> sc(std::size_t(Rg), 0), rc(std::size_t(Rg), 0);
    sc[std::size_t((me + 1) % Rg)] = std::size_t(nk + nv);
    rc[std::size_t((me + Rg - 1) % Rg)] = std::size_t(nk + nv);
    for (int step = 1; step < Rg; ++step) {
      c.all_to_all_v(kv.data(), std::span<const std::size_t>(sc), next.data(), std::span<const std::size_t>(rc));
      std::swap(kv, next);
      const int src = (me - step + Rg) % Rg;  // whose block we now hold
      Tensor<T, B> kb = kv.slice(0, nk).view(k.shape()), vb = kv.slice(nk, nk + nv).view(v.shape());
      auto part = detail::attention_block(q, kb, vb, args, me * n, P + src * n, &part_lse);
      merge_attention(out, lse, part, part_lse);
    }
  }
  if constexpr (U > 1) out = all_to_all(rank.ulysses, out, 1, 2);  // back to (B, S/(U·R), H, Dv)
  return out;
}

}  // namespace pdiff
