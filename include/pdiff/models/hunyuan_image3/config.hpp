// pdiff/models/hunyuan_image3/config.hpp — HunyuanImage3Config: the fields of HunyuanImage-3.0's
// config.json that pdiff reads (official code: hunyuan_image_3/configuration_hunyuan.py, hunyuan.py).
//
// | field                        | meaning                                                    |
// |------------------------------|------------------------------------------------------------|
// | hidden_size                  | D                                                          |
// | num_experts                  | E routed experts per MoE layer                             |
// | moe_topk                     | k, an int or one per layer                                 |
// | moe_intermediate_size        | each routed expert's intermediate size, int or per layer   |
// | num_shared_expert            | shared experts; the shared MLP is moe_intermediate_size × this wide, int or per layer |
// | norm_topk_prob               | renormalise the top-k weights (k > 1)                      |
// | routed_scaling_factor        | the weights' factor otherwise                              |
// | moe_drop_tokens              | capacity-based dropping: refused (the released config does not drop) |
// | vocab_size, num_hidden_layers, num_attention_heads, num_key_value_heads, attention_head_dim,
// | intermediate_size (dense layers), moe_layer_num_skipped (the first layers are dense), rms_norm_eps,
// | rope_theta, patch_embed_hidden_dim (UNetDown/Up width, default 1024), vae.latent_channels,
// | vae_downsample_factor (pixels per token), vae.scaling_factor                                      |
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "pdiff/io/config.hpp"
#include "pdiff/layers/moe.hpp"

namespace pdiff {

struct HunyuanImage3Config {
  std::int64_t hidden_size = 4096;
  std::int64_t num_experts = 64;
  std::vector<std::int64_t> moe_topk{8}, moe_intermediate_size{3072}, num_shared_expert{1};
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1.0f;
  std::int64_t vocab_size = 133120, num_hidden_layers = 32, num_attention_heads = 32, num_key_value_heads = 8,
               attention_head_dim = 128, intermediate_size = 14336, moe_layer_num_skipped = 0,
               patch_embed_hidden_dim = 1024, latent_channels = 32, downsample = 16;
  float rms_norm_eps = 1e-5f;
  double rope_theta = 10000.0;
  float vae_scaling_factor = 0.562679178327931f;

  bool is_moe(std::int64_t layer) const { return num_experts > 1 && layer >= moe_layer_num_skipped; }

  // Layer i's MoE MLP (a per-layer list has one entry per layer; a single value serves every layer).
  MoeConfig moe(std::size_t layer) const {
    auto at = [&](const std::vector<std::int64_t>& v) { return v.size() == 1 ? v[0] : v.at(layer); };
    MoeConfig m;
    m.hidden = hidden_size;
    m.experts = num_experts;
    m.top_k = int(at(moe_topk));
    m.intermediate = at(moe_intermediate_size);
    m.shared_intermediate = at(moe_intermediate_size) * at(num_shared_expert);
    m.renormalize = norm_topk_prob;
    m.routed_scaling = routed_scaling_factor;
    m.gate_up = GateUp::up_first;  // gate_and_up_proj: [up; gate], y = down(up · silu(gate))
    m.check();
    return m;
  }

  // The MoE fields only (a config.json of one MoE layer, as tests/golden/hunyuan_moe_tiny).
  static HunyuanImage3Config from_moe(const JsonConfig& j, std::size_t layers = 0) {
    HunyuanImage3Config c;
    const std::string where = "HunyuanImage-3.0 config";
    c.hidden_size = j.get<std::int64_t>("hidden_size");
    c.num_experts = j.get<std::int64_t>("num_experts");
    auto per_layer = [&](const std::string& k) {
      const auto& v = j.json().at(k);
      std::vector<std::int64_t> out =
          v.is_array() ? j.get<std::vector<std::int64_t>>(k) : std::vector<std::int64_t>{j.get<std::int64_t>(k)};
      PDIFF_CHECK(!out.empty() && (out.size() == 1 || layers == 0 || out.size() == layers), where, ": '", k, "' has ",
                  out.size(), " entries for ", layers, " layers");
      return out;
    };
    PDIFF_CHECK(j.has("moe_topk") && j.has("moe_intermediate_size"), where, ": missing 'moe_topk' or 'moe_intermediate_size'");
    c.moe_topk = per_layer("moe_topk");
    c.moe_intermediate_size = per_layer("moe_intermediate_size");
    c.num_shared_expert = j.has("num_shared_expert") ? per_layer("num_shared_expert") : std::vector<std::int64_t>{0};
    c.norm_topk_prob = j.get_or<bool>("norm_topk_prob", true);
    c.routed_scaling_factor = j.get_or<float>("routed_scaling_factor", 1.0f);
    PDIFF_CHECK(!j.get_or<bool>("moe_drop_tokens", false), where,
                ": moe_drop_tokens = true is not supported (capacity-based token dropping; the released model does "
                "not drop)");
    PDIFF_CHECK(j.get_or<std::string>("hidden_act", "silu") == "silu", where, ": hidden_act '",
                j.get<std::string>("hidden_act"), "' is not supported (silu)");
    PDIFF_CHECK(!j.get_or<bool>("group_limited_greedy", false), where,
                ": group_limited_greedy = true is not supported (expert-group routing)");
    PDIFF_CHECK(!j.get_or<bool>("mlp_bias", false), where, ": mlp_bias = true is not supported");
    PDIFF_CHECK(c.hidden_size > 0 && c.num_experts > 0, where, ": hidden_size (", c.hidden_size, ") and num_experts (",
                c.num_experts, ") must be positive");
    for (std::size_t i = 0; i < std::max(c.moe_topk.size(), c.moe_intermediate_size.size()); ++i) c.moe(i);
    return c;
  }

  static HunyuanImage3Config from(const JsonConfig& j, std::size_t layers = 0) {
    const std::string where = "HunyuanImage-3.0 config";
    HunyuanImage3Config c = from_moe(j, layers);
    c.vocab_size = j.get<std::int64_t>("vocab_size");
    c.num_hidden_layers = j.get<std::int64_t>("num_hidden_layers");
    c.num_attention_heads = j.get<std::int64_t>("num_attention_heads");
    c.num_key_value_heads = j.get_or<std::int64_t>("num_key_value_heads", c.num_attention_heads);
    c.attention_head_dim = j.get_or<std::int64_t>("attention_head_dim", c.hidden_size / std::max<std::int64_t>(c.num_attention_heads, 1));
    c.intermediate_size = j.get<std::int64_t>("intermediate_size");
    c.moe_layer_num_skipped = j.get_or<std::int64_t>("moe_layer_num_skipped", 0);
    c.patch_embed_hidden_dim = j.get_or<std::int64_t>("patch_embed_hidden_dim", 1024);
    c.rms_norm_eps = j.get_or<float>("rms_norm_eps", 1e-5f);
    c.rope_theta = j.get_or<double>("rope_theta", 10000.0);
    if (j.has("vae")) {
      const auto v = j.sub("vae");
      c.latent_channels = v.get<std::int64_t>("latent_channels");
      c.vae_scaling_factor = v.get_or<float>("scaling_factor", c.vae_scaling_factor);
    }
    if (j.has("vae_downsample_factor")) c.downsample = j.get<std::vector<std::int64_t>>("vae_downsample_factor").at(0);
    PDIFF_CHECK(j.get_or<bool>("use_qk_norm", true) && j.get_or<bool>("use_rotary_pos_emb", true) &&
                    !j.get_or<bool>("use_cla", false) && !j.get_or<bool>("use_mla", false) &&
                    !j.get_or<bool>("attention_bias", false),
                where, ": the image-generation path needs qk-norm and RoPE, without CLA, MLA or attention bias");
    PDIFF_CHECK(j.get_or<std::int64_t>("patch_size", 1) == 1, where, ": patch_size ",
                j.get<std::int64_t>("patch_size"), " is not supported (1)");
    PDIFF_CHECK(c.num_hidden_layers > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0 &&
                    c.num_attention_heads % c.num_key_value_heads == 0 && c.attention_head_dim > 0 &&
                    c.attention_head_dim % 4 == 0 && c.vocab_size > 0 && c.intermediate_size > 0 &&
                    c.patch_embed_hidden_dim % 32 == 0 && c.hidden_size % 32 == 0 && c.latent_channels > 0 &&
                    c.downsample > 0,
                where, ": inconsistent sizes (layers ", c.num_hidden_layers, ", heads ", c.num_attention_heads,
                ", kv heads ", c.num_key_value_heads, ", head dim ", c.attention_head_dim, ", hidden ", c.hidden_size,
                ", patch_embed_hidden_dim ", c.patch_embed_hidden_dim, ")");
    return c;
  }
  static HunyuanImage3Config load_moe(const std::filesystem::path& dir) {
    return from_moe(JsonConfig::load(dir / "config.json"));
  }
  static HunyuanImage3Config load(const std::filesystem::path& dir) {
    const auto j = JsonConfig::load(dir / "config.json");
    return from(j, std::size_t(j.get_or<std::int64_t>("num_hidden_layers", 0)));
  }
};

}  // namespace pdiff
