// pdiff/models/flux2/transformer.hpp — Flux2Transformer<Ctx>: diffusers' Flux2Transformer2DModel,
// sharded by the layout's TP (heads, MLP) and sequence-parallel (Ulysses, Ring) axes.
//
//   temb = TimestepMLP(sin/cos(1000·t)) [+ TimestepMLP(sin/cos(1000·guidance))]
//   mods = modulation linears on silu(temb), computed once, shared by every block
//   joint = [context_embedder(txt); x_embedder(img)] cut to this rank's chunk (docs/sequence-parallel.md)
//   double blocks (text and image weights) → single blocks → AdaLN-continuous (scale, shift) → proj_out
// | input        | shape          | notes                                               |
// |--------------|----------------|-----------------------------------------------------|
// | x            | (B, Ni, 128)   | packed latents (+ reference-image tokens appended)  |
// | context      | (B, Nt, joint) | text-encoder hidden states                          |
// | timestep     | (B)            | σ, as the pipeline passes it (the model ×1000)      |
// | guidance     | (B) or empty   | FLUX.2-dev's embedded guidance                      |
// | img_ids/txt_ids | (Ni, 4)/(Nt, 4) | RoPE positions (t, h, w, l)                    |
// Result: (B, Ni, out_channels) on every rank. Small embedders and modulations are replicated. Any
// token count works on every layout: sequence parallel pads the joint sequence (masked keys).
#pragma once

#include <algorithm>

#include <span>
#include <vector>

#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/replicated.hpp"
#include "pdiff/layers/sequence.hpp"
#include "pdiff/layers/timestep.hpp"
#include "pdiff/models/flux2/blocks.hpp"

namespace pdiff {

template <class C>
class Flux2Transformer {
 public:
  using L = typename C::layout;
  using backend = typename C::backend;
  using tensor = typename C::tensor;
  Flux2Config cfg;
  TimestepMLP<C> time_embed, guidance_embed;
  Replicated<C> mod_img, mod_txt, mod_single, x_embedder, context_embedder, norm_out, proj_out;
  std::vector<Flux2DoubleBlock<C>> double_blocks;
  std::vector<Flux2SingleBlock<C>> single_blocks;

  // ck: a Checkpoint (or another weight source with its read / read_plan).
  template <class Source>
  static Flux2Transformer load(const Source& ck, const Flux2Config& cfg, int tp_rank) {
    Flux2Transformer m;
    m.cfg = cfg;
    const std::int64_t D = cfg.inner_dim(), T = cfg.timestep_guidance_channels;
    PDIFF_CHECK(cfg.num_attention_heads % (L::tp * L::ulysses) == 0, "Flux2: num_attention_heads (",
                cfg.num_attention_heads, ") must be divisible by tp*ulysses (", L::tp, "*", L::ulysses, ")");
    auto rep = [&](Replicated<C>& lin, std::int64_t in, std::int64_t out, const std::string& name) {
      lin = Replicated<C>(in, out, false);
      lin.load(ck, {name});
    };
    auto tmlp = [&](TimestepMLP<C>& t, const std::string& p) {
      t = TimestepMLP<C>(T, D, false);
      rep(t.linear_1, T, D, p + ".linear_1.weight");
      rep(t.linear_2, D, D, p + ".linear_2.weight");
    };
    tmlp(m.time_embed, "time_guidance_embed.timestep_embedder");
    if (cfg.guidance_embeds) tmlp(m.guidance_embed, "time_guidance_embed.guidance_embedder");
    rep(m.mod_img, D, 6 * D, "double_stream_modulation_img.linear.weight");
    rep(m.mod_txt, D, 6 * D, "double_stream_modulation_txt.linear.weight");
    rep(m.mod_single, D, 3 * D, "single_stream_modulation.linear.weight");
    rep(m.x_embedder, cfg.in_channels, D, "x_embedder.weight");
    rep(m.context_embedder, cfg.joint_attention_dim, D, "context_embedder.weight");
    rep(m.norm_out, D, 2 * D, "norm_out.linear.weight");
    rep(m.proj_out, D, cfg.out_channels, "proj_out.weight");
    for (std::int64_t i = 0; i < cfg.num_layers; ++i)
      m.double_blocks.push_back(
          Flux2DoubleBlock<C>::load(ck, cfg, "transformer_blocks." + std::to_string(i) + ".", tp_rank));
    for (std::int64_t i = 0; i < cfg.num_single_layers; ++i)
      m.single_blocks.push_back(
          Flux2SingleBlock<C>::load(ck, cfg, "single_transformer_blocks." + std::to_string(i) + ".", tp_rank));
    return m;
  }

  template <class R>
  tensor forward(R& rank, const tensor& x, const tensor& context,
                               std::span<const float> timestep, std::span<const float> guidance,
                               const Tensor<float, OnCpu>& img_ids, const Tensor<float, OnCpu>& txt_ids) const {
    const std::int64_t B = x.size(0), Ni = x.size(1), Nt = context.size(1), S = Ni + Nt;
    PDIFF_CHECK(x.rank() == 3 && x.size(2) == cfg.in_channels, "Flux2: latents", x.shape(), " must be (B, N, ",
                cfg.in_channels, ")");
    PDIFF_CHECK(context.rank() == 3 && context.size(0) == B && context.size(2) == cfg.joint_attention_dim,
                "Flux2: text embeddings", context.shape(), " must be (", B, ", N, ", cfg.joint_attention_dim, ")");
    PDIFF_CHECK(std::int64_t(timestep.size()) == B, "Flux2: ", timestep.size(), " timesteps for a batch of ", B);
    PDIFF_CHECK(!cfg.guidance_embeds || std::int64_t(guidance.size()) == B, "Flux2: this model embeds guidance: ",
                "give one value per batch entry (got ", guidance.size(), ")");
    PDIFF_CHECK(img_ids.size(0) == Ni && txt_ids.size(0) == Nt, "Flux2: position ids (", img_ids.size(0), ", ",
                txt_ids.size(0), ") do not match the token counts (", Ni, ", ", Nt, ")");

    // conditioning, computed once per forward
    auto temb = embed_time(rank, time_embed, timestep);
    if (cfg.guidance_embeds) add_(temb, embed_time(rank, guidance_embed, guidance));
    const auto act = silu(temb);
    const auto m_img = mod_img.forward(rank, act), m_txt = mod_txt.forward(rank, act),
               m_single = mod_single.forward(rank, act);

    // this rank's chunk [c0, c1) of the joint sequence [text; image; padding] and its RoPE rows: a
    // length that does not divide by ulysses·ring is padded at its end with zero tokens whose keys
    // are masked (docs/sequence-parallel.md)
    const SpChunk ch = sp_chunk<L>(rank, S);
    const std::int64_t c0 = ch.begin, c1 = ch.real_end(), t0 = std::min(c0, Nt), t1 = std::min(c1, Nt);
    const std::int64_t i0 = std::clamp(c0, Nt, S), i1 = std::clamp(c1, Nt, S);
    auto txt = context_embedder.forward(rank, narrow(context, 1, t0, t1 - t0));
    auto img_in = narrow(x, 1, i0 - Nt, i1 - i0);
    if (ch.padding() > 0) img_in = cat(img_in, tensor::zeros({B, ch.padding(), x.size(2)}), 1);
    auto img = x_embedder.forward(rank, img_in);
    Tensor<float> ids = cat(txt_ids, img_ids, 0);
    if (ch.padded_sequence()) ids = cat(ids, Tensor<float>::zeros({ch.padded - S, ids.size(1)}), 0);
    const RopeTable full = rope_table_axes(ids, cfg.axes_dims_rope, cfg.rope_theta);
    const RopeTable<backend> rope =
        to<backend>(RopeTable{narrow(full.cos, 0, c0, ch.size()), narrow(full.sin, 0, c0, ch.size())});
    const auto key_mask = sp_key_mask<backend>(B, S, L::ulysses * L::ring);
    const BasicAttnArgs<backend> attn{.key_mask = ch.padded_sequence() ? &key_mask : nullptr};

    for (auto& b : double_blocks) b.forward(rank, txt, img, m_img, m_txt, rope, attn);
    auto h = cat(txt, img, 1);
    for (auto& b : single_blocks) b.forward(rank, h, m_single, rope, attn);

    // AdaLayerNormContinuous: the linear's output chunks are (scale, shift)
    auto emb = norm_out.forward(rank, act);
    auto y = proj_out.forward(rank, layer_norm_modulate(h, cfg.eps, flux2::chunk(emb, 1, 2), flux2::chunk(emb, 0, 2)));
    return narrow(sp_gather<L>(rank, y), 1, Nt, Ni);
  }

 private:
  template <class R>
  tensor embed_time(R& rank, const TimestepMLP<C>& mlp, std::span<const float> t) const {
    std::vector<float> scaled(t.begin(), t.end());
    for (auto& v : scaled) v *= 1000.0f;
    return mlp.forward(rank, timestep_features(scaled, int(cfg.timestep_guidance_channels), true, 0.0f));
  }
};

}  // namespace pdiff
