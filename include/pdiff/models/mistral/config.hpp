// pdiff/models/mistral/config.hpp — MistralConfig: the language-model part of a Mistral /
// Mistral3ForConditionalGeneration config.json (FLUX.2-dev's text encoder) or of a Qwen3ForCausalLM
// (FLUX.2-klein's): the same Llama-style decoder, Qwen3 adding per-head q/k RMSNorm before RoPE.
//
// | config.json                      | read from                                   |
// |----------------------------------|---------------------------------------------|
// | model_type "mistral3"            | "text_config" (vision_config skipped on purpose: FLUX.2 encodes text only) |
// | model_type "mistral" / "llama"   | the top level                               |
// | model_type "qwen3"               | the top level; qk_norm on; sliding_window only when use_sliding_window; attention_bias must be false |
// rope_scaling: none or {"rope_type": "default"} or {"type"/"rope_type": "linear", "factor"}; any other
// type is a clear error (never an uninitialised table). sliding_window must be null or ≥ the longest
// sequence used (checked at run time). Sizes are bounded — vocab_size at most 2^24, the other sizes and
// num_attention_heads × head_dim at most 2^20, layers at most 4096 — so the plan's products fit in int64.
// Every size is checked before anything divides by it; the JSON
// tree is shared, never copied (JsonConfig), so a deeply nested file costs no recursion.
#pragma once

#include <filesystem>
#include <string>

#include "pdiff/io/config.hpp"

namespace pdiff {

struct MistralConfig {
  static constexpr std::int64_t max_size = std::int64_t(1) << 20, max_vocab = std::int64_t(1) << 24, max_layers = 4096;
  std::int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0, max_position_embeddings = 0;
  double rope_theta = 10000.0, rope_linear_factor = 1.0;
  float rms_norm_eps = 1e-5f;
  std::int64_t sliding_window = 0;  // 0: none
  bool tie_word_embeddings = false;
  bool qk_norm = false;  // Qwen3: q_norm/k_norm (RMSNorm over head_dim, shared by the heads) before RoPE
  std::int64_t bos_token_id = 1, eos_token_id = 2, pad_token_id = -1;

  static MistralConfig from(const JsonConfig& root) {
    std::string type = root.get_or<std::string>("model_type", "mistral");
    JsonConfig c = type == "mistral3" ? root.sub("text_config") : root;
    MistralConfig m;
    m.vocab_size = c.get<std::int64_t>("vocab_size");
    m.hidden_size = c.get<std::int64_t>("hidden_size");
    m.intermediate_size = c.get<std::int64_t>("intermediate_size");
    m.num_hidden_layers = c.get<std::int64_t>("num_hidden_layers");
    m.num_attention_heads = c.get<std::int64_t>("num_attention_heads");
    // the head_dim default divides by it: check before
    PDIFF_CHECK(m.num_attention_heads > 0, "MistralConfig ", c.where(), ": num_attention_heads (",
                m.num_attention_heads, ") must be positive");
    m.num_key_value_heads = c.get_or<std::int64_t>("num_key_value_heads", m.num_attention_heads);
    m.head_dim = c.get_or<std::int64_t>("head_dim", m.hidden_size / m.num_attention_heads);
    m.max_position_embeddings = c.get_or<std::int64_t>("max_position_embeddings", 32768);
    m.rms_norm_eps = float(c.get_or<double>("rms_norm_eps", 1e-5));
    m.sliding_window = c.get_or<std::int64_t>("sliding_window", 0);
    if (type == "qwen3") {
      m.qk_norm = true;
      if (!c.get_or<bool>("use_sliding_window", false)) m.sliding_window = 0;
      PDIFF_CHECK(!c.get_or<bool>("attention_bias", false), "MistralConfig ", c.where(),
                  ": attention_bias true is not supported (Qwen3 checkpoints have none)");
    }
    m.tie_word_embeddings = c.get_or<bool>("tie_word_embeddings", root.get_or<bool>("tie_word_embeddings", false));
    m.bos_token_id = c.get_or<std::int64_t>("bos_token_id", 1);
    m.eos_token_id = c.get_or<std::int64_t>("eos_token_id", 2);
    m.pad_token_id = c.get_or<std::int64_t>("pad_token_id", -1);
    // rope: transformers 5 moved theta into rope_parameters
    JsonConfig rope = c.has("rope_parameters") && c.json()["rope_parameters"].is_object() ? c.sub("rope_parameters")
                      : c.has("rope_scaling") && c.json()["rope_scaling"].is_object() ? c.sub("rope_scaling")
                                                                                       : JsonConfig();
    m.rope_theta = c.get_or<double>("rope_theta", rope.get_or<double>("rope_theta", 10000.0));
    std::string rtype = rope.get_or<std::string>("rope_type", rope.get_or<std::string>("type", "default"));
    if (rtype == "linear") m.rope_linear_factor = rope.get<double>("factor");
    else PDIFF_CHECK(rtype == "default", "MistralConfig ", c.where(), ": rope type '", rtype,
                     "' is not supported (default, linear)");
    m.validate(c.where());
    return m;
  }
  static MistralConfig load(const std::filesystem::path& dir) { return from(JsonConfig::load(dir / "config.json")); }

  void validate(const std::string& where) const {
    PDIFF_CHECK(hidden_size > 0 && intermediate_size > 0 && num_hidden_layers > 0 && num_attention_heads > 0 &&
                    head_dim > 0 && vocab_size > 0,
                "MistralConfig ", where, ": sizes must be positive (hidden_size ", hidden_size, ", intermediate_size ",
                intermediate_size, ", num_hidden_layers ", num_hidden_layers, ", num_attention_heads ",
                num_attention_heads, ", head_dim ", head_dim, ", vocab_size ", vocab_size, ")");
    PDIFF_CHECK(num_key_value_heads > 0, "MistralConfig ", where, ": num_key_value_heads (", num_key_value_heads,
                ") must be positive");
    // mistral_param_plan multiplies size by size by layer count: bounded before anything multiplies
    for (auto [name, v] : {std::pair{"hidden_size", hidden_size}, {"intermediate_size", intermediate_size},
                           {"num_attention_heads", num_attention_heads}, {"head_dim", head_dim}})
      PDIFF_CHECK(v <= max_size, "MistralConfig ", where, ": ", name, " (", v, ") must be at most ", max_size);
    PDIFF_CHECK(vocab_size <= max_vocab, "MistralConfig ", where, ": vocab_size (", vocab_size, ") must be at most ",
                max_vocab);
    PDIFF_CHECK(num_hidden_layers <= max_layers, "MistralConfig ", where, ": num_hidden_layers (", num_hidden_layers,
                ") must be at most ", max_layers);
    PDIFF_CHECK(num_attention_heads * head_dim <= max_size, "MistralConfig ", where,
                ": num_attention_heads × head_dim (", num_attention_heads, " × ", head_dim, ") must be at most ", max_size);
    PDIFF_CHECK(num_attention_heads % num_key_value_heads == 0, "MistralConfig ", where, ": num_attention_heads (",
                num_attention_heads, ") must be a multiple of num_key_value_heads (", num_key_value_heads, ")");
    PDIFF_CHECK(head_dim % 2 == 0, "MistralConfig ", where, ": head_dim (", head_dim, ") must be even for RoPE");
    PDIFF_CHECK(rope_theta > 0, "MistralConfig ", where, ": rope_theta must be positive");
  }
};

}  // namespace pdiff
