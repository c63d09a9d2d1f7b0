// pdiff/models/bagel/vit.hpp — BagelVit<C>: BAGEL's SigLIP-NaViT vision tower and connector (official
// code: modeling/bagel/siglip_navit.py, bagel.py forward_cache_update_vit), for an input image's
// understanding tokens in image editing.
//
//   pixels (N, 14·14·3) patches in (p, q, c) order → patch_embedding (Linear) + position_embedding[r·70 + c]
//   per layer: x += out_proj(attn(LayerNorm1(x)))  (full attention over the image's patches, heads of D)
//              x += fc2(gelu_tanh(fc1(LayerNorm2(x))))
//   post_layernorm → connector fc1 → gelu_tanh → fc2 → + vit_pos_embed[r·70 + c]  → (N, LLM hidden)
// app.py runs vit_config.num_hidden_layers − 1 layers (the last is unused) and rope off. Replicated on
// every rank (about 0.4B parameters released; run once per edit).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/config.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/norm.hpp"
#include "pdiff/layers/replicated.hpp"

namespace pdiff {

struct BagelVitConfig {
  std::int64_t hidden_size = 1152, intermediate_size = 4304, layers = 26, heads = 16, patch_size = 14;
  std::int64_t max_patches_per_side = 70;  // BagelConfig.vit_max_num_patch_per_side (app.py)
  float layer_norm_eps = 1e-6f;

  static BagelVitConfig from(const JsonConfig& j) {
    BagelVitConfig c;
    c.hidden_size = j.get<std::int64_t>("hidden_size");
    c.intermediate_size = j.get<std::int64_t>("intermediate_size");
    c.layers = j.get<std::int64_t>("num_hidden_layers") - 1;  // app.py: num_hidden_layers -= 1
    c.heads = j.get<std::int64_t>("num_attention_heads");
    c.patch_size = j.get_or<std::int64_t>("patch_size", 14);
    c.layer_norm_eps = float(j.get_or<double>("layer_norm_eps", 1e-6));
    PDIFF_CHECK(c.layers >= 1 && c.heads > 0 && c.hidden_size % c.heads == 0, "BAGEL: vit_config.json: ",
                c.layers + 1, " layers (one is dropped), hidden ", c.hidden_size, ", heads ", c.heads, " do not fit");
    PDIFF_CHECK(j.get_or<std::string>("hidden_act", "gelu_pytorch_tanh") == "gelu_pytorch_tanh",
                "BAGEL: vit_config.json hidden_act must be gelu_pytorch_tanh");
    return c;
  }
};

template <class C>
class BagelVit {
 public:
  using tensor = typename C::tensor;
  using HostTensor = Tensor<float, OnCpu>;
  struct Layer {
    LayerNorm<C> ln1, ln2;
    Replicated<C> q, k, v, out, fc1, fc2;
  };
  BagelVitConfig cfg;
  Replicated<C> patch_embedding, connector_fc1, connector_fc2;
  tensor position_embedding, vit_pos_embed;  // (70², vit hidden), (70², LLM hidden); rows gathered per patch
  std::vector<Layer> layers;
  LayerNorm<C> post_layernorm;

  static BagelVit load(const Checkpoint& ck, const BagelVitConfig& cfg, std::int64_t llm_hidden) {
    BagelVit m;
    m.cfg = cfg;
    const std::int64_t H = cfg.hidden_size, I = cfg.intermediate_size, P = cfg.patch_size;
    auto linear = [&](Replicated<C>& l, const std::string& n, std::int64_t in, std::int64_t out) {
      l = Replicated<C>(in, out, true);
      l.load(ck, {n + ".weight"}, {n + ".bias"});
    };
    auto norm = [&](LayerNorm<C>& l, const std::string& n) {
      l = LayerNorm<C>(H, cfg.layer_norm_eps, true);
      const auto b = ck.read(n + ".bias");
      l.load(ck.read(n + ".weight"), &b);
    };
    const std::string p = "vit_model.vision_model.";
    PDIFF_CHECK(ck.shape(p + "embeddings.patch_embedding.weight") == std::vector<std::int64_t>({H, 3 * P * P}),
                "BAGEL: ", p, "embeddings.patch_embedding.weight must be the Linear (", H, ", ", 3 * P * P,
                ") app.py converts the Conv2d to");
    linear(m.patch_embedding, p + "embeddings.patch_embedding", 3 * P * P, H);
    const auto position_embedding = ck.read(p + "embeddings.position_embedding.weight");
    const auto vit_pos_embed = ck.read("vit_pos_embed.pos_embed");
    const std::int64_t side = cfg.max_patches_per_side;
    PDIFF_CHECK(position_embedding.rank() == 2 && position_embedding.size(1) == H &&
                    vit_pos_embed.shape() == Shape({side * side, llm_hidden}) && position_embedding.size(0) >= 1,
                "BAGEL: the ViT position tables must be (", side * side, ", ", llm_hidden, ") and (patches, ", H, ")");
    m.position_embedding = to_ctx<C>(position_embedding);
    m.vit_pos_embed = to_ctx<C>(vit_pos_embed);
    for (std::int64_t i = 0; i < cfg.layers; ++i) {
      const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
      Layer y;
      norm(y.ln1, l + "layer_norm1");
      norm(y.ln2, l + "layer_norm2");
      linear(y.q, l + "self_attn.q_proj", H, H);
      linear(y.k, l + "self_attn.k_proj", H, H);
      linear(y.v, l + "self_attn.v_proj", H, H);
      linear(y.out, l + "self_attn.out_proj", H, H);
      linear(y.fc1, l + "mlp.fc1", H, I);
      linear(y.fc2, l + "mlp.fc2", I, H);
      m.layers.push_back(std::move(y));
    }
    norm(m.post_layernorm, p + "post_layernorm");
    linear(m.connector_fc1, "connector.fc1", H, llm_hidden);
    linear(m.connector_fc2, "connector.fc2", llm_hidden, llm_hidden);
    return m;
  }

  // Patches (N, 3·P·P) of an image of (rows × cols) patches, in (p, q, c) order → the SigLIP output (N, H)
  // (`vit_out`) and the LLM tokens (N, LLM hidden) (`tokens`), on C's backend.
  struct Out {
    tensor vit_out, tokens;
  };
  template <class R>
  Out forward(R& rank, const HostTensor& patches, std::int64_t rows, std::int64_t cols) const {
    const std::int64_t N = rows * cols, H = cfg.hidden_size, NH = cfg.heads, D = H / NH, side = cfg.max_patches_per_side;
    PDIFF_CHECK(patches.shape() == Shape({N, 3 * cfg.patch_size * cfg.patch_size}), "BAGEL ViT: patches",
                patches.shape(), " must be (", N, ", ", 3 * cfg.patch_size * cfg.patch_size, ")");
    PDIFF_CHECK(rows <= side && cols <= side && (rows - 1) * side + cols <= position_embedding.size(0),
                "BAGEL ViT: ", rows, "x", cols, " patches exceed the position table (", side, " per side)");
    // patch n = (r, c) takes row r·side + c of both position tables
    Tensor<std::int32_t, OnCpu> ids({N});
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) ids(r * cols + c) = std::int32_t(r * side + c);
    const auto at = to<typename C::backend>(ids);
    const std::int64_t LH = vit_pos_embed.size(1);
    auto x = patch_embedding.forward(rank, to_ctx<C>(patches.view({1, N, 3 * cfg.patch_size * cfg.patch_size})));
    add_(x, index_rows(position_embedding, at).view({1, N, H}));
    for (const auto& l : layers) {
      const auto h = l.ln1(x);
      const auto q = l.q.forward(rank, h).view({1, N, NH, D}), k = l.k.forward(rank, h).view({1, N, NH, D}),
                 v = l.v.forward(rank, h).view({1, N, NH, D});
      const auto a = attention(q, k, v, BasicAttnArgs<typename C::backend>{});
      add_(x, l.out.forward(rank, a.view({1, N, H})));
      add_(x, l.fc2.forward(rank, gelu_tanh(l.fc1.forward(rank, l.ln2(x)))));
    }
    x = post_layernorm(x);
    auto t = connector_fc2.forward(rank, gelu_tanh(connector_fc1.forward(rank, x)));
    add_(t, index_rows(vit_pos_embed, at).view({1, N, LH}));
    return {x.view({N, H}), t.view({N, LH})};
  }
};

}  // namespace pdiff
