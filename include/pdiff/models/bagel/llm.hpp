// pdiff/models/bagel/llm.hpp — BagelLlm<C>: BAGEL's Qwen2 Mixture-of-Transformers language model,
// tensor-parallel (official code: modeling/bagel/qwen2_navit.py, Qwen2MoTDecoderLayer, PackedAttentionMoT).
//
// Every layer holds two weight sets: understanding (text, ViT tokens and the image markers) and
// generation (`*_moe_gen`: VAE-latent tokens). A query block is a list of runs, each run rows of one
// set; the sets meet in one joint attention over [context; block]:
//   per run: h = norm_m(x); q, k, v = qkv_m(h) (biases); q, k = q_norm_m(q), k_norm_m(k)
//   all rows: RoPE (rotate_half, one position per row: an image's tokens share one), attention
//             (text causal, image blocks full) against the context's cached K/V
//   per run: x += o_m(attn); x += mlp_m(post_norm_m(x))
// | piece                  | sharding                                                     |
// |------------------------|--------------------------------------------------------------|
// | embed_tokens           | VocabParallelEmbedding (language_model.model.embed_tokens)   |
// | q/k/v (+ _moe_gen)     | QKVParallel by heads, biases (kv heads max(1, kv/tp))        |
// | o_proj, down_proj      | RowParallel (all_reduce per run)                             |
// | gate|up                | MergedColumnParallel                                         |
// | norms                  | replicated                                                   |
// A Context is the reference's NaiveCache + kv_lens + ropes of one sequence: per layer the K/V of its
// tokens on this TP rank's KV heads, (1, tokens, kv_local, head_dim), and the next RoPE position.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "pdiff/io/checkpoint.hpp"
#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/mlp.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/vocab_parallel.hpp"
#include "pdiff/models/bagel/config.hpp"

namespace pdiff {

enum class MotMode : int { und = 0, gen = 1 };

// Rows [begin, begin + size) of a query block use one weight set.
struct MotRun {
  MotMode mode = MotMode::und;
  std::int64_t begin = 0, size = 0;
};

template <class C>
struct MotWeights {
  RMSNorm<C> input_norm, post_norm, q_norm, k_norm;
  QKVParallel<C> qkv;
  RowParallel<C> o;
  SwiGLUMLP<C> mlp;
};

template <class C>
class BagelLlm {
 public:
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  using HostTensor = Tensor<float, OnCpu>;
  using Prefix = KvPrefix<typename C::value_type, backend>;
  static_assert(L::ulysses == 1 && L::ring == 1,
                "BAGEL runs on TP, CFG and VaePatch axes; sequence parallel (Ulysses/Ring) is not supported for it");

  struct Layer {
    MotWeights<C> w[2];  // [und, gen]
  };
  // One sequence's cache: K/V per layer (this rank's KV heads) and the next RoPE position.
  struct Context {
    std::int64_t length = 0, rope = 0;
    std::vector<Prefix> layers;
  };

  BagelConfig cfg;
  VocabParallelEmbedding<C> embed;
  std::vector<Layer> layers;
  RMSNorm<C> norm[2];

  template <class R>
  static BagelLlm load(const Checkpoint& ck, const BagelConfig& cfg, const R& rank,
                       const std::string& p = "language_model.model.") {
    BagelLlm m;
    m.cfg = cfg;
    const int r = L::coord(Axis::tp, rank.index);
    const std::int64_t D = cfg.hidden_size, hd = cfg.head_dim(), H = cfg.num_attention_heads,
                       Hk = cfg.num_key_value_heads, I = cfg.intermediate_size;
    m.embed = VocabParallelEmbedding<C>(cfg.vocab_size, D);
    m.embed.load(ck, r, {p + "embed_tokens.weight"});
    for (std::int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      Layer y;
      for (int s = 0; s < 2; ++s) {
        const std::string g = s == 0 ? "" : "_moe_gen";
        auto& w = y.w[s];
        w.input_norm = RMSNorm<C>(D, cfg.rms_norm_eps);
        w.post_norm = RMSNorm<C>(D, cfg.rms_norm_eps);
        w.q_norm = RMSNorm<C>(hd, cfg.rms_norm_eps);
        w.k_norm = RMSNorm<C>(hd, cfg.rms_norm_eps);
        w.input_norm.load(ck.read(l + "input_layernorm" + g + ".weight"));
        w.post_norm.load(ck.read(l + "post_attention_layernorm" + g + ".weight"));
        w.q_norm.load(ck.read(l + "self_attn.q_norm" + g + ".weight"));
        w.k_norm.load(ck.read(l + "self_attn.k_norm" + g + ".weight"));
        w.qkv = QKVParallel<C>(D, hd, H, Hk, true);
        const std::string a = l + "self_attn.";
        w.qkv.load(ck, r, {a + "q_proj" + g + ".weight", a + "k_proj" + g + ".weight", a + "v_proj" + g + ".weight"},
                   {a + "q_proj" + g + ".bias", a + "k_proj" + g + ".bias", a + "v_proj" + g + ".bias"});
        w.o = RowParallel<C>(H * hd, D, false);
        w.o.load(ck, r, {a + "o_proj" + g + ".weight"});
        const std::string f = l + "mlp" + g + ".";
        w.mlp = SwiGLUMLP<C>(D, I, false);
        w.mlp.gate_up.load(ck, r, {f + "gate_proj.weight", f + "up_proj.weight"});
        w.mlp.down.load(ck, r, {f + "down_proj.weight"});
      }
      m.layers.push_back(std::move(y));
    }
    for (int s = 0; s < 2; ++s) {
      m.norm[s] = RMSNorm<C>(D, cfg.rms_norm_eps);
      m.norm[s].load(ck.read(p + (s == 0 ? "norm.weight" : "norm_moe_gen.weight")));
    }
    return m;
  }

  // Token embeddings (1, n, H) in C (every TP rank gets the whole rows).
  template <class R>
  tensor embed_tokens(R& rank, std::span<const std::int64_t> ids) const {
    Tensor<std::int64_t, OnCpu> t({1, std::int64_t(ids.size())});
    std::copy(ids.begin(), ids.end(), t.data());
    return embed.forward(rank, t);
  }

  // Runs a query block x (1, n, H) at RoPE positions `pos` (n) through every layer against `ctx`
  // (causal: row i sees the context and rows <= i; otherwise every row sees all). update: the
  // block's K/V are appended to ctx (the caller advances ctx.rope). Returns the last hidden states
  // (1, n, H) before the final norm. n_layers < all: only the first layers (tests of one layer).
  template <class R>
  tensor forward(R& rank, const tensor& x_in, std::span<const MotRun> runs, std::span<const std::int64_t> pos,
                 bool causal, Context& ctx, bool update, std::size_t n_layers = SIZE_MAX) const {
    const std::int64_t n = x_in.size(1);
    check_runs(runs, n);
    PDIFF_CHECK(std::int64_t(pos.size()) == n, "BAGEL: ", pos.size(), " RoPE positions for ", n, " rows");
    PDIFF_CHECK(ctx.layers.empty() || ctx.layers.size() == layers.size(), "BAGEL: a context of ", ctx.layers.size(),
                " layers for a model of ", layers.size());
    const auto rope = to<backend>(rope_table_1d(pos, int(cfg.head_dim()), cfg.rope_theta, 1.0));
    const std::int64_t P = ctx.length;
    BasicAttnArgs<backend> args;
    args.causal = causal;
    args.q_offset = P;  // rows sit after the context's P keys
    if (update && ctx.layers.empty()) ctx.layers.assign(layers.size(), {});
    PDIFF_CHECK(!update || n_layers >= layers.size(), "BAGEL: a context is updated by every layer");
    tensor x = x_in.clone();  // the residual stream is updated in place
    for (std::size_t i = 0; i < std::min(n_layers, layers.size()); ++i) {
      const auto& w = layers[i].w;
      std::vector<tensor> q, k, v;
      for (const auto& r : runs) {
        const auto& s = w[int(r.mode)];
        auto t = s.qkv.forward(rank, s.input_norm(part(x, r, n)));
        q.push_back(s.q_norm(t.q));
        k.push_back(s.k_norm(t.k));
        v.push_back(std::move(t.v));
      }
      auto qa = join(q), ka = join(k), va = join(v);
      apply_rope_half(qa, rope);
      apply_rope_half(ka, rope);
      const Prefix* prefix = P > 0 ? &ctx.layers[i] : nullptr;
      Prefix next;
      if (update) next = {P > 0 ? cat(ctx.layers[i].k, ka, 1) : ka.clone(), P > 0 ? cat(ctx.layers[i].v, va, 1) : va.clone()};
      const auto a = attend<L>(rank, std::move(qa), std::move(ka), std::move(va), args, prefix);
      const auto flat = a.view({1, n, a.size(2) * a.size(3)});
      std::vector<tensor> y;
      for (const auto& r : runs) y.push_back(w[int(r.mode)].o.forward(rank, part(flat, r, n)));
      add_(x, join(y));
      y.clear();
      for (const auto& r : runs) {
        const auto& s = w[int(r.mode)];
        y.push_back(s.mlp.forward(rank, s.post_norm(part(x, r, n))));
      }
      add_(x, join(y));
      if (update) ctx.layers[i] = std::move(next);
    }
    if (update) ctx.length = P + n;
    return x;
  }

 private:
  static void check_runs(std::span<const MotRun> runs, std::int64_t n) {
    std::int64_t at = 0;
    for (const auto& r : runs) {
      PDIFF_CHECK(r.begin == at && r.size > 0, "BAGEL: query runs must tile the block in order (run at ", r.begin,
                  " of ", r.size, " rows, expected ", at, ")");
      at += r.size;
    }
    PDIFF_CHECK(at == n, "BAGEL: query runs cover ", at, " of ", n, " rows");
  }
  static tensor part(const tensor& x, const MotRun& r, std::int64_t n) {
    return r.begin == 0 && r.size == n ? x : narrow(x, 1, r.begin, r.size);
  }
  static tensor join(const std::vector<tensor>& xs) {
    if (xs.size() == 1) return xs[0];
    std::vector<const tensor*> p;
    for (auto& t : xs) p.push_back(&t);
    return cat(std::span<const tensor* const>(p), 1);
  }
};

}  // namespace pdiff
