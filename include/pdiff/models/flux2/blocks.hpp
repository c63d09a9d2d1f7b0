// pdiff/models/flux2/blocks.hpp — FLUX.2's double-stream and single-stream blocks on a rank's chunk
// of the joint sequence [text; image].
//
// | block   | weights (diffusers names)                                  | sharding                       |
// |---------|------------------------------------------------------------|--------------------------------|
// | double  | attn.to_q/k/v (image), attn.add_q/k/v_proj (text)          | QKVParallel (heads / tp)       |
// |         | attn.norm_q/k, attn.norm_added_q/k (per-head RMSNorm)      | replicated                     |
// |         | attn.to_out.0 (image), attn.to_add_out (text)              | RowParallel                    |
// |         | ff.linear_in [gate; up], ff_context.linear_in              | MergedColumnParallel (fused)   |
// |         | ff.linear_out, ff_context.linear_out                       | RowParallel                    |
// | single  | attn.to_qkv_mlp_proj [q; k; v; gate; up]                   | MergedColumnParallel (fused)   |
// |         | attn.to_out over [attention | mlp]                         | RowParallel, packed parts      |
// Sequence parallel: a rank holds tokens [c0, c1) of the joint sequence (docs/sequence-parallel.md);
// its text part gets the text weights and its image part the image weights — either part may be
// empty; padding rows (a length not divisible by ulysses·ring) follow the image and are masked as
// keys by `attn`. Modulation vectors are computed once per forward by the transformer and passed in.
#pragma once

#include "pdiff/io/checkpoint.hpp"
#include "pdiff/layers/attention.hpp"
#include "pdiff/layers/merged_column_parallel.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/qkv_parallel.hpp"
#include "pdiff/layers/row_parallel.hpp"
#include "pdiff/models/flux2/config.hpp"

namespace pdiff {

namespace flux2 {
// Part i of n equal parts of the last dimension: (B, n·D) → (B, D).
template <class T, class B>
Tensor<T, B> chunk(const Tensor<T, B>& t, int i, int n) {
  const std::int64_t d = t.size(-1) / n;
  return narrow(t, -1, i * d, d);
}

// One stream's attention inputs: LN → modulate → q/k/v → per-head RMSNorm.
template <class C>
struct StreamQkv {
  QKVParallel<C> qkv;
  RMSNorm<C> norm_q, norm_k;
  template <class R>
  Qkv<typename C::tensor> operator()(R& rank, const typename C::tensor& x_mod) const {
    auto t = qkv.forward(rank, x_mod);
    t.q = norm_q(t.q);
    t.k = norm_k(t.k);
    return t;
  }
};

template <class C>
struct FeedForward {
  MergedColumnParallel<C> linear_in;  // [gate; up]
  RowParallel<C> linear_out;
  template <class R>
  typename C::tensor operator()(R& rank, const typename C::tensor& x) const {
    return linear_out.forward(rank, swiglu(linear_in.forward(rank, x)));
  }
};
}  // namespace flux2

template <class C>
struct Flux2DoubleBlock {
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  float eps = 1e-6f;
  flux2::StreamQkv<C> img_qkv, txt_qkv;
  RowParallel<C> to_out, to_add_out;
  flux2::FeedForward<C> ff, ff_context;

  template <class Source>
  static Flux2DoubleBlock load(const Source& ck, const Flux2Config& c, const std::string& p, int r) {
    const std::int64_t D = c.inner_dim(), hd = c.attention_head_dim, H = c.num_attention_heads, M = c.mlp_hidden();
    Flux2DoubleBlock b;
    b.eps = c.eps;
    auto stream = [&](const std::string& q, const std::string& k, const std::string& v, const std::string& nq,
                      const std::string& nk) {
      flux2::StreamQkv<C> s{QKVParallel<C>(D, hd, H, H, false), RMSNorm<C>(hd, c.eps), RMSNorm<C>(hd, c.eps)};
      s.qkv.load(ck, r, {p + q, p + k, p + v});
      s.norm_q.load(ck.read(p + nq));
      s.norm_k.load(ck.read(p + nk));
      return s;
    };
    b.img_qkv = stream("attn.to_q.weight", "attn.to_k.weight", "attn.to_v.weight", "attn.norm_q.weight",
                       "attn.norm_k.weight");
    b.txt_qkv = stream("attn.add_q_proj.weight", "attn.add_k_proj.weight", "attn.add_v_proj.weight",
                       "attn.norm_added_q.weight", "attn.norm_added_k.weight");
    b.to_out = RowParallel<C>(D, D, false);
    b.to_out.load(ck, r, {p + "attn.to_out.0.weight"});
    b.to_add_out = RowParallel<C>(D, D, false);
    b.to_add_out.load(ck, r, {p + "attn.to_add_out.weight"});
    auto ffn = [&](const std::string& name) {
      flux2::FeedForward<C> f{MergedColumnParallel<C>(D, {M, M}, false, Sources::fused), RowParallel<C>(M, D, false)};
      f.linear_in.load(ck, r, {p + name + ".linear_in.weight"});
      f.linear_out.load(ck, r, {p + name + ".linear_out.weight"});
      return f;
    };
    b.ff = ffn("ff");
    b.ff_context = ffn("ff_context");
    return b;
  }

  // txt: (B, nt, D), img: (B, ni, D) — this rank's tokens; mod_*: (B, 6D); rope: rows of [txt; img].
  template <class R>
  void forward(R& rank, tensor& txt, tensor& img, const tensor& mod_img, const tensor& mod_txt,
               const RopeTable<backend>& rope, const BasicAttnArgs<backend>& attn = {}) const {
    using flux2::chunk;
    const std::int64_t nt = txt.size(1);
    auto im = img_qkv(rank, layer_norm_modulate(img, eps, chunk(mod_img, 0, 6), chunk(mod_img, 1, 6)));
    auto tx = txt_qkv(rank, layer_norm_modulate(txt, eps, chunk(mod_txt, 0, 6), chunk(mod_txt, 1, 6)));
    auto q = cat(tx.q, im.q, 1), k = cat(tx.k, im.k, 1), v = cat(tx.v, im.v, 1);
    apply_rope_interleaved(q, rope);
    apply_rope_interleaved(k, rope);
    auto a = attend<L>(rank, std::move(q), std::move(k), std::move(v), attn);  // (B, nt + ni, H/tp, hd)
    const std::int64_t B = a.size(0), n = a.size(1), w = a.size(2) * a.size(3);
    a = a.view({B, n, w});
    gated_add(img, chunk(mod_img, 2, 6), to_out.forward(rank, narrow(a, 1, nt, n - nt)));
    gated_add(img, chunk(mod_img, 5, 6),
              ff(rank, layer_norm_modulate(img, eps, chunk(mod_img, 3, 6), chunk(mod_img, 4, 6))));
    gated_add(txt, chunk(mod_txt, 2, 6), to_add_out.forward(rank, narrow(a, 1, 0, nt)));
    gated_add(txt, chunk(mod_txt, 5, 6),
              ff_context(rank, layer_norm_modulate(txt, eps, chunk(mod_txt, 3, 6), chunk(mod_txt, 4, 6))));
  }
};

template <class C>
struct Flux2SingleBlock {
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  float eps = 1e-6f;
  std::int64_t head_dim = 128;
  MergedColumnParallel<C> to_qkv_mlp;  // local [q | k | v | gate | up]
  RMSNorm<C> norm_q, norm_k;
  RowParallel<C> to_out;  // packed [attention | mlp]

  template <class Source>
  static Flux2SingleBlock load(const Source& ck, const Flux2Config& c, const std::string& p, int r) {
    const std::int64_t D = c.inner_dim(), hd = c.attention_head_dim, M = c.mlp_hidden();
    Flux2SingleBlock b;
    b.eps = c.eps;
    b.head_dim = hd;
    b.to_qkv_mlp = MergedColumnParallel<C>(D, {D, D, D, M, M}, false, Sources::fused);
    b.to_qkv_mlp.load(ck, r, {p + "attn.to_qkv_mlp_proj.weight"});
    b.norm_q = RMSNorm<C>(hd, c.eps);
    b.norm_k = RMSNorm<C>(hd, c.eps);
    b.norm_q.load(ck.read(p + "attn.norm_q.weight"));
    b.norm_k.load(ck.read(p + "attn.norm_k.weight"));
    b.to_out = RowParallel<C>(std::vector<std::int64_t>{D, M}, D, false);
    b.to_out.load(ck, r, {p + "attn.to_out.weight"});
    return b;
  }

  // x: (B, n, D) this rank's joint tokens; mod: (B, 3D).
  template <class R>
  void forward(R& rank, tensor& x, const tensor& mod, const RopeTable<backend>& rope,
               const BasicAttnArgs<backend>& attn = {}) const {
    using flux2::chunk;
    // one GEMM per part of to_qkv_mlp_proj (q, k, v, [gate | up]): each comes out contiguous, no narrow copies
    const auto xm = layer_norm_modulate(x, eps, chunk(mod, 0, 3), chunk(mod, 1, 3));
    const std::int64_t B = x.size(0), n = x.size(1), w = to_qkv_mlp.part_offset(1);  // local attention width
    auto heads = [&](std::size_t i) {
      return to_qkv_mlp.forward_parts(rank, xm, i, i + 1).view({B, n, w / head_dim, head_dim});
    };
    auto q = norm_q.with_rope(heads(0), rope, true), k = norm_k.with_rope(heads(1), rope, true);
    const auto a = attend<L>(rank, std::move(q), std::move(k), heads(2), attn).view({B, n, w});
    // to_out's input [attention | swiglu(gate, up)] is written part by part into one buffer (no cat)
    const auto gate_up = to_qkv_mlp.forward_parts(rank, xm, 3, 5);
    tensor packed({B, n, w + gate_up.size(-1) / 2});
    narrow_assign(packed, -1, 0, a);
    swiglu_into(gate_up, packed, w);
    gated_add(x, chunk(mod, 2, 3), to_out.forward(rank, packed));
  }
};

}  // namespace pdiff
