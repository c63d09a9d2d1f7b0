// pdiff/layers/self_attention.hpp — SelfAttention<C>: the generic attention block.
//
//   x (B, S_local, hidden) → QKVParallel → [q/k RMSNorm] → RoPE → [q/k RMSNorm] → attend<L> → o RowParallel
// | option             | used by                                                  |
// |--------------------|----------------------------------------------------------|
// | qk_norm = before   | FLUX.2, BAGEL (norm, then RoPE)                          |
// | qk_norm = after    | HunyuanImage-3.0 (RoPE, then norm)                       |
// | rope = half        | Llama/Mistral/Qwen rotate_half                           |
// | rope = interleaved | FLUX.2 (pairs)                                           |
// Heads are split by TP, the sequence by Ulysses/Ring (attend). The RoPE table must cover this
// rank's tokens (use sp_shard on the full table's rows).
#pragma once

#include <optional>

#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/kv_cache.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"

namespace pdiff {

enum class QkNorm { none, before_rope, after_rope };
enum class RopeStyle { none, half, interleaved };

template <class C>
struct SelfAttention {
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  QKVParallel<C> qkv;
  RowParallel<C> o;
  QkNorm qk_norm = QkNorm::none;
  RopeStyle rope = RopeStyle::none;
  RMSNorm<C> q_norm, k_norm;

  SelfAttention() = default;
  SelfAttention(std::int64_t hidden, std::int64_t head_dim, std::int64_t heads, std::int64_t kv_heads, bool qkv_bias,
                bool o_bias, QkNorm norm = QkNorm::none, RopeStyle r = RopeStyle::half, float norm_eps = 1e-6f)
      : qkv(hidden, head_dim, heads, kv_heads, qkv_bias),
        o(heads * head_dim, hidden, o_bias),
        qk_norm(norm),
        rope(r),
        q_norm(head_dim, norm_eps),
        k_norm(head_dim, norm_eps) {
    static_assert(L::tp >= 1);
    PDIFF_CHECK((heads / L::tp) % L::ulysses == 0, "SelfAttention: num_heads (", heads,
                ") must be divisible by tp*ulysses (", L::tp, "*", L::ulysses, ")");
  }

  // x: (B, S_local, hidden); table: RoPE rows of this rank's tokens (ignored when rope == none).
  // With a KvCache (decoding; no sequence parallel) the new k/v are appended to `layer` and the
  // queries attend to every cached token; args.q_offset must be the cache length before the call.
  template <class R>
  tensor forward(R& rank, const tensor& x, const RopeTable<backend>* table = nullptr, const BasicAttnArgs<backend>& args = {},
                KvCache<C>* cache = nullptr, int layer = 0) const {
    Qkv<tensor> t = qkv.forward(rank, x);
    PDIFF_CHECK(rope == RopeStyle::none || table, "SelfAttention: a RoPE table is required");
    if (qk_norm == QkNorm::before_rope && rope != RopeStyle::none) {  // one pass each (rms_norm_rope_*)
      t.q = q_norm.with_rope(t.q, *table, rope == RopeStyle::interleaved);
      t.k = k_norm.with_rope(t.k, *table, rope == RopeStyle::interleaved);
    } else {
      if (qk_norm == QkNorm::before_rope) normalize(t);
      if (rope == RopeStyle::half) {
        apply_rope_half(t.q, *table);
        apply_rope_half(t.k, *table);
      } else if (rope == RopeStyle::interleaved) {
        apply_rope_interleaved(t.q, *table);
        apply_rope_interleaved(t.k, *table);
      }
    }
    if (qk_norm == QkNorm::after_rope) normalize(t);
    if (cache) {
      PDIFF_CHECK(L::ulysses * L::ring == 1, "SelfAttention: a KV cache is used without sequence parallel (ulysses ",
                  L::ulysses, ", ring ", L::ring, ")");
      const std::int64_t n = t.k.size(1);
      cache->append(layer, t.k, t.v);
      t.k = cache->keys(layer, n);
      t.v = cache->values(layer, n);
    }
    auto a = attend<L>(rank, std::move(t.q), std::move(t.k), std::move(t.v), args);
    const std::int64_t B = a.size(0), S = a.size(1);
    return o.forward(rank, a.view({B, S, a.size(2) * a.size(3)}));
  }

 private:
  void normalize(Qkv<tensor>& t) const {
    t.q = q_norm(t.q);
    t.k = k_norm(t.k);
  }
};

}  // namespace pdiff
