// pdiff/models/hunyuan_image3/transformer.hpp — HunyuanImage3Transformer<C>: HunyuanImage-3.0's
// image-generation forward (the decoder-only MoE transformer with its UNet patch embed and head),
// sharded by the layout's TP, Ulysses/Ring and EP axes. Official code: hunyuan_image_3/hunyuan.py;
// the forward is written out in tests/golden/hunyuan_image3_tiny/SPEC.md (§ numbers below).
//
//   x = wte(ids); x[<img>] = patch_embed(latents, time_embed(t)); x[<timestep>] = timestep_emb(t)   §4
//   per layer: x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))   (MLP: dense SwiGLU, or MoE<C>)        §5
//   velocity = final_layer(x[<img>], time_embed_2(t))   (no final norm for images)                 §6
// | piece      | detail                                                                         | sharding |
// |------------|--------------------------------------------------------------------------------|----------|
// | attention  | qkv_proj rows grouped per KV head [q×G, k, v]; RoPE (2-D for image tokens, NeoX halves), then RMSNorm on q, k; mask causal + full inside the image block | KV heads / tp (contiguous rows), o_proj RowParallel; sequence over Ulysses·Ring (padded, masked) |
// | MLP        | gate_and_up_proj [up; gate] → down(up · silu(gate))                           | intermediate / tp |
// | MoE        | layers ≥ moe_layer_num_skipped (layers/moe.hpp)                                | TP and EP<N> |
// | UNet parts | patch_embed, final_layer (unet.hpp): in C like the layers; timestep embedders on the host | replicated, every rank |
// One call computes one guidance branch (batch 1). The prefix before `<timestep>` (bos, prompt, boi,
// size and ratio tokens) is causal and the same at every step, so its K/V are too: with a KvCache the
// first step keeps them (gathered over the sequence ranks, this rank's KV heads) and later steps run only
// the tokens from `<timestep>` on, attending to the cached prefix as the reference's cached steps do
// (SPEC.md §7). Without one every step recomputes the whole sequence (the same result).
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/moe.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/layers/sequence.hpp"
#include "pdiff/models/hunyuan_image3/config.hpp"
#include "pdiff/models/hunyuan_image3/shards.hpp"
#include "pdiff/models/hunyuan_image3/unet.hpp"

namespace pdiff {

// One generation sequence: `<bos> prompt <boi> <img_size> <img_ratio> <timestep> <img>×h·w <eoi>` as
// token ids, with where the `<timestep>` slot and the image block are.
struct HunyuanSequence {
  std::vector<std::int32_t> ids;
  std::int64_t timestep_index = 0, image_begin = 0, h = 0, w = 0;

  std::int64_t size() const { return std::int64_t(ids.size()); }
  void check(std::int64_t vocab) const {
    PDIFF_CHECK(h > 0 && w > 0 && image_begin >= 0 && image_begin + h * w <= size() && timestep_index >= 0 &&
                    timestep_index < size() && (timestep_index < image_begin || timestep_index >= image_begin + h * w),
                "HunyuanImage-3.0: a sequence of ", size(), " tokens cannot hold a ", h, "x", w, " image at ",
                image_begin, " and the timestep at ", timestep_index);
    for (std::size_t i = 0; i < ids.size(); ++i)
      PDIFF_CHECK(ids[i] >= 0 && ids[i] < vocab, "HunyuanImage-3.0: token ", ids[i], " at ", i,
                  " is outside the vocabulary [0, ", vocab, ")");
  }
};

namespace hunyuan_image3 {
// RoPE table (S, D) (SPEC.md §3): text y = x = index; image token (i, j) of a block at L:
// y = L + (hw − h)/2 + i, x = L + (hw − w)/2 + j; pair k's angle (k even ? y : x)·θ^(−2k/D), halves [a, a].
inline RopeTable<OnCpu> rope_2d(const HunyuanSequence& s, std::int64_t rows, std::int64_t D, double theta) {
  RopeTable<OnCpu> t{Tensor<float>::zeros({rows, D}), Tensor<float>::zeros({rows, D})};
  const std::int64_t L = s.image_begin, hw = s.h * s.w;
  for (std::int64_t p = 0; p < s.size(); ++p) {
    double y = double(p), x = double(p);
    if (p >= L && p < L + hw) {
      const std::int64_t i = (p - L) / s.w, j = (p - L) % s.w;
      y = double(L + (hw - s.h) / 2 + i);
      x = double(L + (hw - s.w) / 2 + j);
    }
    for (std::int64_t k = 0; k < D / 2; ++k) {
      const double a = (k % 2 == 0 ? y : x) * std::pow(theta, -2.0 * double(k) / double(D));
      const float c = float(std::cos(a)), sn = float(std::sin(a));
      t.cos(p * D + k) = t.cos(p * D + D / 2 + k) = c;
      t.sin(p * D + k) = t.sin(p * D + D / 2 + k) = sn;
    }
  }
  return t;
}

// (1, rows, first + rows) u8 for the query rows [first, first + rows) against keys [0, first + rows):
// causal, full inside the image block, keys past the sequence (padding) masked. first = 0: the whole
// sequence; first = P: the rows after a cached prefix of P tokens (keys = [prefix; rows]).
inline Tensor<std::uint8_t> attention_mask(const HunyuanSequence& s, std::int64_t rows, std::int64_t first = 0) {
  const std::int64_t keys = first + rows;
  auto m = Tensor<std::uint8_t>::zeros({1, rows, keys});
  const std::int64_t S = s.size(), L = s.image_begin, E = L + s.h * s.w;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t i = first + r;
    for (std::int64_t j = 0; j < std::min(S, keys); ++j)
      m(r * keys + j) = j <= i || (i >= L && i < E && j >= L && j < E);
  }
  return m;
}
}  // namespace hunyuan_image3

template <class C>
struct HunyuanAttention {
  using L = typename C::layout;
  using tensor = typename C::tensor;
  std::int64_t kv_local = 0, groups = 0, head_dim = 0;
  detail::LinearCore<C> qkv;  // rows of this rank's KV heads, each [q×G, k, v]
  RowParallel<C> o;
  RMSNorm<C> q_norm, k_norm;

  template <class Source, class R>
  static HunyuanAttention load(const Source& ck, const HunyuanImage3Config& c, const R& rank, const std::string& p) {
    const std::int64_t H = c.hidden_size, NH = c.num_attention_heads, D = c.attention_head_dim;
    const HunyuanQkvShards qkv(c, L::tp);  // this rank's KV heads with their query groups, [q×G, k, v] rows
    HunyuanAttention a;
    a.kv_local = qkv.kv_local(), a.groups = qkv.groups(), a.head_dim = D;
    const std::int64_t r0 = qkv.row_begin(L::coord(Axis::tp, rank.index));
    detail::set_shard(a.qkv, ck, ShardPlan{qkv.local_shape(), 0, {{0, 0, r0, r0 + qkv.rows()}}}, {p + "qkv_proj.weight"},
                      {{qkv.full_shape()[0], qkv.full_shape()[1]}});
    a.o = RowParallel<C>(NH * D, H, false);
    a.o.load(ck, L::coord(Axis::tp, rank.index), {p + "o_proj.weight"});
    a.q_norm = RMSNorm<C>(D, c.rms_norm_eps);
    a.k_norm = RMSNorm<C>(D, c.rms_norm_eps);
    a.q_norm.load(ck.read(p + "query_layernorm.weight"));
    a.k_norm.load(ck.read(p + "key_layernorm.weight"));
    return a;
  }

  using Prefix = KvPrefix<typename C::value_type, typename C::backend>;

  // x: (1, n, H) this rank's rows → (1, n, H). `prefix`: cached K/V before these rows; `keep` (> 0):
  // store the K/V of the sequence's first `keep` rows in `*kept` (gathered over the sequence ranks).
  template <class R>
  tensor forward(R& rank, const tensor& x, const RopeTable<typename C::backend>& rope,
                 const BasicAttnArgs<typename C::backend>& args, const Prefix* prefix = nullptr,
                 std::int64_t keep = 0, Prefix* kept = nullptr) const {
    const std::int64_t B = x.size(0), n = x.size(1), G = groups, D = head_dim;
    const auto t = qkv.matmul(x).view({B, n, kv_local, G + 2, D});
    auto q = narrow(t, 3, 0, G).view({B, n, kv_local * G, D});
    auto k = narrow(t, 3, G, 1).view({B, n, kv_local, D});
    auto v = narrow(t, 3, G + 1, 1).view({B, n, kv_local, D});
    apply_rope_half(q, rope);
    apply_rope_half(k, rope);
    q = q_norm(q);  // after RoPE, as the reference
    k = k_norm(k);
    if (keep > 0) {
      kept->k = narrow(sp_gather<L>(rank, k), 1, 0, keep);
      kept->v = narrow(sp_gather<L>(rank, v), 1, 0, keep);
    }
    auto a = attend<L>(rank, std::move(q), std::move(k), std::move(v), args, prefix);
    return o.forward(rank, a.view({B, n, kv_local * G * D}));
  }
};

template <class C>
struct HunyuanLayer {
  using L = typename C::layout;
  using tensor = typename C::tensor;
  RMSNorm<C> input_norm, post_norm;
  HunyuanAttention<C> attn;
  MoeMlp<C> dense;  // when not MoE: intermediate / tp, partial sums
  std::optional<MoE<C>> moe;

  using Prefix = typename HunyuanAttention<C>::Prefix;

  template <class R>
  void forward(R& rank, tensor& x, const RopeTable<typename C::backend>& rope,
               const BasicAttnArgs<typename C::backend>& args, MoeLoad* load, const Prefix* prefix = nullptr,
               std::int64_t keep = 0, Prefix* kept = nullptr) const {
    add_(x, attn.forward(rank, input_norm(x), rope, args, prefix, keep, kept));
    const auto xn = post_norm(x);
    if (moe) {
      add_(x, moe->forward(rank, xn, load));
    } else {
      auto y = dense(xn);
      if constexpr (L::tp > 1) all_reduce_(rank.tp, y);
      add_(x, y);
    }
  }
};

template <class C>
class HunyuanImage3Transformer {
 public:
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  using HostTensor = Tensor<float, OnCpu>;
  HunyuanImage3Config cfg;
  HostTensor wte;  // (vocab, H), host: one row per token is gathered per call
  hunyuan_image3::TimestepEmbedder timestep_emb, time_embed, time_embed_2;
  hunyuan_image3::UNetDown<C> patch_embed;
  hunyuan_image3::UNetUp<C> final_layer;
  std::vector<HunyuanLayer<C>> layers;

  // One guidance branch's prefix K/V, per layer (empty until the first velocity() that is given it).
  struct KvCache {
    std::int64_t length = 0;  // tokens cached: the sequence's timestep_index
    std::vector<typename HunyuanLayer<C>::Prefix> layers;
  };

  template <class Source, class R>
  static HunyuanImage3Transformer load(const Source& ck, const HunyuanImage3Config& cfg, const R& rank) {
    using namespace hunyuan_image3;
    HunyuanImage3Transformer m;
    m.cfg = cfg;
    m.wte = ck.read("model.wte.weight");
    PDIFF_CHECK(m.wte.rank() == 2 && m.wte.size(0) == cfg.vocab_size && m.wte.size(1) == cfg.hidden_size,
                "HunyuanImage-3.0: model.wte.weight", m.wte.shape(), " must be (vocab_size ", cfg.vocab_size,
                ", hidden_size ", cfg.hidden_size, ")");
    m.timestep_emb = TimestepEmbedder::load(ck, "timestep_emb");
    m.time_embed = TimestepEmbedder::load(ck, "time_embed");
    m.time_embed_2 = TimestepEmbedder::load(ck, "time_embed_2");
    m.patch_embed = UNetDown<C>::load(ck, "patch_embed");
    m.final_layer = UNetUp<C>::load(ck, "final_layer");
    const int tp = L::coord(Axis::tp, rank.index);
    for (std::int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      HunyuanLayer<C> l;
      l.input_norm = RMSNorm<C>(cfg.hidden_size, cfg.rms_norm_eps);
      l.post_norm = RMSNorm<C>(cfg.hidden_size, cfg.rms_norm_eps);
      l.input_norm.load(ck.read(p + "input_layernorm.weight"));
      l.post_norm.load(ck.read(p + "post_attention_layernorm.weight"));
      l.attn = HunyuanAttention<C>::load(ck, cfg, rank, p + "self_attn.");
      if (cfg.is_moe(i)) l.moe = MoE<C>::load(ck, cfg.moe(std::size_t(i)), rank, p + "mlp.");
      else
        l.dense = MoeMlp<C>::load(ck, cfg.hidden_size, cfg.intermediate_size, GateUp::up_first, L::tp, tp,
                                  p + "mlp.gate_and_up_proj.weight", p + "mlp.down_proj.weight");
      m.layers.push_back(std::move(l));
    }
    return m;
  }

  // The embedded sequence (1, S, H) on the host (SPEC.md §4), t = σ·1000.
  HostTensor embed(const HunyuanSequence& s, const HostTensor& latents, float t) const {
    return to_host_f32(embed_ctx(s, latents, t));
  }
  // The same in C: token and timestep rows gathered on the host and moved, the image rows written by
  // patch_embed where C runs.
  tensor embed_ctx(const HunyuanSequence& s, const HostTensor& latents, float t) const {
    s.check(cfg.vocab_size);
    PDIFF_CHECK(latents.rank() == 4 && latents.size(0) == 1 && latents.size(1) == cfg.latent_channels &&
                    latents.size(2) == s.h && latents.size(3) == s.w,
                "HunyuanImage-3.0: latents", latents.shape(), " must be (1, ", cfg.latent_channels, ", ", s.h, ", ",
                s.w, ")");
    const std::int64_t H = cfg.hidden_size, S = s.size();
    HostTensor x({1, S, H});
    for (std::int64_t i = 0; i < S; ++i) std::copy_n(wte.data() + std::int64_t(s.ids[std::size_t(i)]) * H, H, x.data() + i * H);
    const float ts[] = {t};
    const auto te = timestep_emb(ts);
    std::copy_n(te.data(), H, x.data() + s.timestep_index * H);
    std::fill_n(x.data() + s.image_begin * H, s.h * s.w * H, 0.0f);
    auto xc = to_ctx<C>(x);
    const auto img = patch_embed(to_ctx<C>(latents), time_embed(ts));  // (1, N, H)
    detail::copy_rows<backend>(xc.data() + s.image_begin * H, H, img.data(), H, H, s.h * s.w);
    return xc;
  }

  // The velocity (1, C, h, w) of one guidance branch, on every rank; `load` (optional) gets the
  // expert load of each MoE layer. `cache` (optional, one per branch): an empty one is filled with the
  // prefix K/V; a filled one makes this call compute only the rows from `<timestep>` on.
  template <class R>
  HostTensor velocity(R& rank, const HunyuanSequence& s, const HostTensor& latents, float t,
                      std::vector<MoeLoad>* load = nullptr, KvCache* cache = nullptr) const {
    const auto x_full = embed_ctx(s, latents, t);
    if (s.timestep_index > s.image_begin) cache = nullptr;  // the image inside the prefix: nothing fixed to keep
    const bool cached = cache && cache->length > 0;
    PDIFF_CHECK(!cached || (cache->length == s.timestep_index && cache->layers.size() == layers.size()),
                "HunyuanImage-3.0: the KV cache holds ", cache ? cache->length : 0,
                " prefix tokens; this sequence's prefix has ", s.timestep_index, " (one cache per sequence)");
    const std::int64_t first = cached ? cache->length : 0;  // rows [first, S) are computed
    const std::int64_t S = s.size() - first, H = cfg.hidden_size;
    const SpChunk ch = sp_chunk<L>(rank, S);
    auto x = narrow(x_full, 1, first + ch.begin, ch.real());
    if (ch.padding() > 0) x = cat(x, tensor::zeros({1, ch.padding(), H}), 1);
    const auto table = hunyuan_image3::rope_2d(s, first + ch.padded, cfg.attention_head_dim, cfg.rope_theta);
    const auto rope = to<backend>(RopeTable<OnCpu>{narrow(table.cos, 0, first + ch.begin, ch.size()),
                                                   narrow(table.sin, 0, first + ch.begin, ch.size())});
    const auto mask = to<backend>(hunyuan_image3::attention_mask(s, ch.padded, first));
    const BasicAttnArgs<backend> args{.mask = &mask};
    if (load) load->assign(layers.size(), {});
    const std::int64_t keep = cache && !cached ? s.timestep_index : 0;
    if (keep > 0) cache->layers.assign(layers.size(), {});
    for (std::size_t i = 0; i < layers.size(); ++i)
      layers[i].forward(rank, x, rope, args, load ? &(*load)[i] : nullptr, cached ? &cache->layers[i] : nullptr, keep,
                        keep > 0 ? &cache->layers[i] : nullptr);
    if (keep > 0) cache->length = keep;
    const auto y = narrow(sp_gather<L>(rank, x), 1, s.image_begin - first, s.h * s.w);
    const float ts[] = {t};
    return to_host_f32(final_layer(y, time_embed_2(ts), s.h, s.w));
  }
};

}  // namespace pdiff
