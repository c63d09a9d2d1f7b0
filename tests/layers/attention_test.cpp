// Attention: the CPU op against a naive materialised softmax; attend<L> and SelfAttention on every
// layout against serial; the KV cache against full causal attention.
#include "harness.hpp"

#include <limits>

using namespace pdiff;
using namespace pdiff::test;

namespace {
// Naive attention in double: softmax(q·kᵀ·scale + mask)·v, all scores materialised.
Tensor<float> naive_attention(const Tensor<float>& q, const Tensor<float>& k, const Tensor<float>& v, bool causal,
                              const Tensor<std::uint8_t>* key_mask, Tensor<float>* lse) {
  const std::int64_t B = q.size(0), Sq = q.size(1), H = q.size(2), D = q.size(3), Sk = k.size(1), Hk = k.size(2);
  Tensor<float> out = Tensor<float>::zeros({B, Sq, H, D});
  if (lse) *lse = Tensor<float>({B, H, Sq});
  const double scale = 1.0 / std::sqrt(double(D));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      const std::int64_t hk = h / (H / Hk);
      for (std::int64_t i = 0; i < Sq; ++i) {
        std::vector<double> s(std::size_t(Sk), -INFINITY);
        double mx = -INFINITY;
        for (std::int64_t j = 0; j < Sk; ++j) {
          if (causal && j > i) continue;
          if (key_mask && !(*key_mask)(b * Sk + j)) continue;
          double dot = 0;
          for (std::int64_t d = 0; d < D; ++d) dot += double(q(((b * Sq + i) * H + h) * D + d)) * k(((b * Sk + j) * Hk + hk) * D + d);
          s[std::size_t(j)] = dot * scale;
          mx = std::max(mx, s[std::size_t(j)]);
        }
        double sum = 0;
        for (auto& e : s) sum += (e = std::isinf(e) ? 0.0 : std::exp(e - mx));
        for (std::int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (std::int64_t j = 0; j < Sk; ++j) acc += s[std::size_t(j)] * v(((b * Sk + j) * Hk + hk) * D + d);
          out(((b * Sq + i) * H + h) * D + d) = float(acc / sum);
        }
        if (lse) (*lse)((b * H + h) * Sq + i) = float(mx + std::log(sum));
      }
    }
  return out;
}
}  // namespace

TEST_CASE("attention op equals the naive reference: plain, causal, GQA, padding, lse") {
  auto q = random({2, 150, 4, 8}, 1), k = random({2, 150, 2, 8}, 2), v = random({2, 150, 2, 8}, 3);
  Tensor<std::uint8_t> pad({2, 150});
  for (std::int64_t i = 0; i < pad.numel(); ++i) pad(i) = (i % 150) < 140 || i < 150;  // batch 1 pads 10 keys
  for (int causal = 0; causal < 2; ++causal) {
    CAPTURE(causal);
    Tensor<float> lse, lse_ref;
    AttnArgs a;
    a.causal = causal;
    a.key_mask = &pad;
    auto o = attention(q, k, v, a, &lse);
    auto r = naive_attention(q, k, v, causal, &pad, &lse_ref);
    CHECK(rel_err(o, r) < 1e-5);
    CHECK(rel_err(lse, lse_ref) < 1e-5);
  }
  // a fully masked row gives zeros and lse −inf
  Tensor<std::uint8_t> none = Tensor<std::uint8_t>::zeros({2, 150});
  Tensor<float> lse;
  AttnArgs a;
  a.key_mask = &none;
  auto o = attention(q, k, v, a, &lse);
  CHECK(o(0) == 0.0f);
  CHECK(lse(0) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("merge_attention of two key halves equals attention over all keys") {
  auto q = random({1, 5, 2, 4}, 4), k = random({1, 12, 2, 4}, 5), v = random({1, 12, 2, 4}, 6);
  Tensor<float> l1, l2;
  auto o1 = attention(q, narrow(k, 1, 0, 7), narrow(v, 1, 0, 7), {}, &l1);
  auto o2 = attention(q, narrow(k, 1, 7, 5), narrow(v, 1, 7, 5), {}, &l2);
  merge_attention(o1, l1, o2, l2);
  Tensor<float> lr;
  auto r = attention(q, k, v, {}, &lr);
  CHECK(rel_err(o1, r) < 1e-6);
  CHECK(rel_err(l1, lr) < 1e-6);
}

TEST_CASE_TEMPLATE("attend<L>: sequence- and head-sharded attention equals serial", L, PDIFF_TEST_LAYOUTS) {
  const std::int64_t B = 2, S = 16, H = 8, D = 4;
  for (std::int64_t hk : {8, 2}) {
    for (int causal = 0; causal < 2; ++causal) {
      CAPTURE(hk);
      CAPTURE(causal);
      auto q = random({B, S, H, D}, 7), k = random({B, S, hk, D}, 8), v = random({B, S, hk, D}, 9);
      Tensor<std::uint8_t> pad({B, S});
      for (std::int64_t i = 0; i < pad.numel(); ++i) pad(i) = !(i >= S && i % S >= 13);  // batch 1: last 3 keys padding
      AttnArgs a;
      a.causal = causal;
      a.key_mask = &pad;
      auto ref = attention(q, k, v, a);
      auto got = run_ranks<L>([&](auto& rank) {
        // heads split by TP (kv heads as QKVParallel would), sequence by Ulysses × Ring
        const int r = rank.coords.tp;
        const std::int64_t hq = H / L::tp, hkl = hk >= L::tp ? hk / L::tp : 1;
        const std::int64_t kb = hk >= L::tp ? r * hkl : r / (L::tp / hk);
        auto ql = sp_shard<L>(rank, narrow(q, 2, r * hq, hq));
        auto kl = sp_shard<L>(rank, narrow(k, 2, kb, hkl));
        auto vl = sp_shard<L>(rank, narrow(v, 2, kb, hkl));
        auto o = attend<L>(rank, ql, kl, vl, a);
        return all_gather(rank.tp, sp_gather<L>(rank, o), 2);
      });
      for (auto& o : got) CHECK(rel_err(o, ref) < 1e-5);
    }
  }
}

TEST_CASE_TEMPLATE("SelfAttention block (q/k norm, both RoPE styles) equals serial", L, PDIFF_TEST_LAYOUTS) {
  using C = Ctx<L>;
  const std::int64_t B = 1, S = 8, hidden = 32, D = 8, H = 4, Hk = 2;
  auto x = random({B, S, hidden}, 10), wq = random({H * D, hidden}, 11, 0.2f), wk = random({Hk * D, hidden}, 12, 0.2f),
       wv = random({Hk * D, hidden}, 13, 0.2f), wo = random({hidden, H * D}, 14, 0.2f), nq = random({D}, 15),
       nk = random({D}, 16);
  std::vector<std::int64_t> pos(S);
  for (std::int64_t i = 0; i < S; ++i) pos[std::size_t(i)] = i + 3;
  const auto table = rope_table_1d(pos, int(D), 10000.0);
  for (auto [norm, style] : {std::pair{QkNorm::before_rope, RopeStyle::interleaved},
                            std::pair{QkNorm::after_rope, RopeStyle::half}}) {
    auto build = [&](auto ctx, int r) {
      SelfAttention<decltype(ctx)> att(hidden, D, H, Hk, false, false, norm, style);
      att.qkv.load(r, wq, wk, wv);
      att.o.load(r, wo);
      att.q_norm.load(nq);
      att.k_norm.load(nk);
      return att;
    };
    SelfComm self;
    Rank<Layout<OnCpu>, SelfComm> serial_rank;
    auto ref = build(Ctx<Layout<OnCpu>>{}, 0).forward(serial_rank, x, &table, {.causal = true});
    auto got = run_ranks<L>([&](auto& rank) {
      auto att = build(C{}, rank.coords.tp);
      RopeTable local{sp_shard<L>(rank, table.cos, 0), sp_shard<L>(rank, table.sin, 0)};
      auto y = att.forward(rank, sp_shard<L>(rank, x), &local, {.causal = true});
      return sp_gather<L>(rank, y);
    });
    for (auto& y : got) CHECK(rel_err(y, ref) < 1e-5);
    (void)self;
  }
}

TEST_CASE("KvCache: decoding token by token equals causal attention over the whole sequence") {
  const std::int64_t B = 2, S = 9, H = 4, Hk = 2, D = 8;
  auto q = random({B, S, H, D}, 17), k = random({B, S, Hk, D}, 18), v = random({B, S, Hk, D}, 19);
  auto ref = attention(q, k, v, {.causal = true});
  KvCache<HostCtx> cache(1, B, 16, Hk, D);
  // prefill 5 tokens, then decode the rest one at a time
  cache.append(0, narrow(k, 1, 0, 5), narrow(v, 1, 0, 5));
  auto first = attention(narrow(q, 1, 0, 5), cache.keys(0, 5), cache.values(0, 5), {.causal = true});
  cache.advance(5);
  CHECK(rel_err(first, narrow(ref, 1, 0, 5)) < 1e-6);
  for (std::int64_t t = 5; t < S; ++t) {
    cache.append(0, narrow(k, 1, t, 1), narrow(v, 1, t, 1));
    auto o = attention(narrow(q, 1, t, 1), cache.keys(0, 1), cache.values(0, 1),
                       {.causal = true, .q_offset = t});
    cache.advance(1);
    CHECK(rel_err(o, narrow(ref, 1, t, 1)) < 1e-6);
  }
  CHECK(cache.length() == S);
  CHECK_THROWS_WITH_AS(cache.advance(100), doctest::Contains("exceed the capacity 16"), Error);
}
