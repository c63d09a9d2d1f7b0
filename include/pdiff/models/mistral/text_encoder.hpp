// pdiff/models/mistral/text_encoder.hpp — MistralTextEncoder<Ctx>: the Mistral language model
// (FLUX.2-dev's text encoder), tensor-parallel, loading Mistral3ForConditionalGeneration checkpoints;
// with cfg.qk_norm the same code is Qwen3ForCausalLM (FLUX.2-klein's text encoder).
//
// | part                    | sharding                                         | checkpoint names (after the prefix) |
// |-------------------------|--------------------------------------------------|--------------------------|
// | embed_tokens            | VocabParallelEmbedding                           | embed_tokens.weight      |
// | q/k/v_proj              | QKVParallel (heads/tp, kv heads max(1, kv/tp))   | layers.i.self_attn.*     |
// | o_proj                  | RowParallel (all_reduce)                         | layers.i.self_attn.o_proj|
// | gate_proj|up_proj       | MergedColumnParallel                             | layers.i.mlp.*           |
// | down_proj               | RowParallel                                      | layers.i.mlp.down_proj   |
// | norms                   | replicated                                       | *_layernorm, norm        |
// | q_norm/k_norm (Qwen3)   | replicated (one (head_dim) weight for all heads) | layers.i.self_attn.q_norm/k_norm |
// | lm_head (generate only) | VocabParallelLMHead (tied: the embedding)        | lm_head.weight           |
// Prefixes found automatically: "model.language_model." / "language_model.model." (Mistral3, new and
// old transformers layouts) or "model." (MistralForCausalLM, Qwen3ForCausalLM). The vision tower and projector of
// Mistral3 are skipped on purpose: the diffusion pipelines encode text only.
// The encoder uses only the TP axis of the layout; sequence-parallel ranks hold the whole prompt.
#pragma once

#include <algorithm>

#include <array>
#include <span>
#include <string>
#include <vector>

#include "pdiff/core/philox.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/layers/ctx.hpp"
#include "pdiff/layers/mlp.hpp"
#include "pdiff/layers/self_attention.hpp"
#include "pdiff/layers/vocab_parallel.hpp"
#include "pdiff/models/mistral/config.hpp"
#include "pdiff/parallel/layout.hpp"

namespace pdiff {

struct GenerateOptions {
  int max_new_tokens = 32;
  float temperature = 0.0f;  // 0: greedy
  std::uint64_t seed = 0;    // sampling draws philox_uniform(seed, step): the same on every rank
  std::int64_t eos_token_id = -1;  // -1: the config's
};

template <class OuterCtx>
class MistralTextEncoder {
 public:
  // The text encoder is tensor-parallel only, whatever else the model's layout has.
  using L = Layout<TP<OuterCtx::layout::tp>, typename OuterCtx::layout::backend>;
  using C = Ctx<L, typename OuterCtx::value_type>;
  using backend = typename C::backend;
  using tensor = typename C::tensor;

  struct Layer {
    RMSNorm<C> input_norm, post_norm;
    SelfAttention<C> attn;
    SwiGLUMLP<C> mlp;
  };

  MistralConfig cfg;
  VocabParallelEmbedding<C> embed;
  std::vector<Layer> layers;
  RMSNorm<C> norm;
  VocabParallelLMHead<C> lm_head;
  bool has_lm_head = false;

  // Loads this TP rank's shard. `layers_needed` < num_hidden_layers loads only the first layers
  // (FLUX.2 reads hidden states up to layer 30 of 40); with_lm_head for generate().
  static MistralTextEncoder load(const Checkpoint& ck, const MistralConfig& cfg, int tp_rank,
                                 std::int64_t layers_needed = -1, bool with_lm_head = false) {
    MistralTextEncoder m;
    m.cfg = cfg;
    const std::string p = find_prefix(ck);
    const std::int64_t D = cfg.hidden_size, hd = cfg.head_dim, H = cfg.num_attention_heads,
                       Hk = cfg.num_key_value_heads, I = cfg.intermediate_size;
    const std::int64_t n = layers_needed < 0 ? cfg.num_hidden_layers : std::min(layers_needed, cfg.num_hidden_layers);
    m.embed = VocabParallelEmbedding<C>(cfg.vocab_size, D);
    m.embed.load(ck, tp_rank, {p + "embed_tokens.weight"});
    for (std::int64_t i = 0; i < n; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      Layer y{RMSNorm<C>(D, cfg.rms_norm_eps), RMSNorm<C>(D, cfg.rms_norm_eps),
              SelfAttention<C>(D, hd, H, Hk, false, false, cfg.qk_norm ? QkNorm::before_rope : QkNorm::none,
                               RopeStyle::half, cfg.rms_norm_eps),
              SwiGLUMLP<C>(D, I, false)};
      y.input_norm.load(ck.read(l + "input_layernorm.weight"));
      if (cfg.qk_norm) {
        y.attn.q_norm.load(ck.read(l + "self_attn.q_norm.weight"));
        y.attn.k_norm.load(ck.read(l + "self_attn.k_norm.weight"));
      }
      y.post_norm.load(ck.read(l + "post_attention_layernorm.weight"));
      y.attn.qkv.load(ck, tp_rank, {l + "self_attn.q_proj.weight", l + "self_attn.k_proj.weight", l + "self_attn.v_proj.weight"});
      y.attn.o.load(ck, tp_rank, {l + "self_attn.o_proj.weight"});
      y.mlp.gate_up.load(ck, tp_rank, {l + "mlp.gate_proj.weight", l + "mlp.up_proj.weight"});
      y.mlp.down.load(ck, tp_rank, {l + "mlp.down_proj.weight"});
      m.layers.push_back(std::move(y));
    }
    m.norm = RMSNorm<C>(D, cfg.rms_norm_eps);
    if (n == cfg.num_hidden_layers) m.norm.load(ck.read(p + "norm.weight"));
    if (with_lm_head) {
      PDIFF_CHECK(n == cfg.num_hidden_layers, "MistralTextEncoder: generate() needs every layer loaded");
      m.lm_head = VocabParallelLMHead<C>(cfg.vocab_size, D);
      // transformers ties Mistral3's head by the top-level flag; the checkpoint tells: no head → tied
      std::string head = find_lm_head(ck, p + "embed_tokens.weight");
      m.lm_head.load(ck, tp_rank, {head});
      m.has_lm_head = true;
    }
    return m;
  }

  // ids, mask: (B, S) (mask 1 = token, 0 = padding). Returns the hidden states listed in `which`
  // (0 = embeddings, i = output of layer i, num_hidden_layers = after the final norm, like
  // transformers' output_hidden_states) concatenated per token: (B, S, |which|·hidden).
  template <class R>
  tensor encode(R& rank, const Tensor<std::int64_t, OnCpu>& ids, const Tensor<std::uint8_t, OnCpu>& mask,
                              std::span<const int> which) const {
    PDIFF_CHECK(ids.rank() == 2 && mask.shape() == ids.shape(), "MistralTextEncoder: ids", ids.shape(), " and mask",
                mask.shape(), " must both be (B, S)");
    const std::int64_t B = ids.size(0), S = ids.size(1), D = cfg.hidden_size;
    int last = 0;
    for (int w : which) {
      PDIFF_CHECK(w >= 0 && w <= cfg.num_hidden_layers && (w == cfg.num_hidden_layers || w <= int(layers.size())),
                  "MistralTextEncoder: hidden state ", w, " is not available (", layers.size(), " of ",
                  cfg.num_hidden_layers, " layers loaded)");
      last = std::max(last, w);
    }
    check_window(S);
    const auto rope = to<backend>(rope_table_1d(positions(S, 0), int(cfg.head_dim), cfg.rope_theta, cfg.rope_linear_factor));
    const Tensor<std::uint8_t, backend> key_mask = to<backend>(mask);
    BasicAttnArgs<backend> args;
    args.causal = true;
    args.key_mask = &key_mask;
    // left-padded rows see no key: their attention output is 0, as transformers' SDPA path gives
    std::vector<tensor> hs(which.size());
    auto keep = [&](int index, const tensor& h) {
      for (std::size_t j = 0; j < which.size(); ++j)
        if (which[j] == index) hs[j] = h.clone();
    };
    auto h = embed.forward(rank, ids);
    keep(0, h);
    const int stop = std::min<int>(last, int(cfg.num_hidden_layers));
    for (int i = 0; i < stop; ++i) {
      h = layer_forward(rank, i, h, rope, args, nullptr);
      if (i + 1 < cfg.num_hidden_layers) keep(i + 1, h);
    }
    if (last == cfg.num_hidden_layers) keep(last, norm(h));
    std::vector<const tensor*> parts;
    for (auto& t : hs) parts.push_back(&t);
    return parts.size() == 1 ? hs[0] : cat<typename C::value_type, backend>(parts, 2);
  }

  // Greedy or temperature sampling after a prompt (B = 1, no padding). Every TP rank returns the
  // same tokens: the logits are all-gathered and the draw uses the same Philox numbers.
  template <class R>
  std::vector<std::int64_t> generate(R& rank, std::span<const std::int64_t> prompt, const GenerateOptions& o) const {
    PDIFF_CHECK(has_lm_head, "MistralTextEncoder: load with with_lm_head = true to generate");
    PDIFF_CHECK(!prompt.empty(), "MistralTextEncoder::generate: empty prompt");
    const std::int64_t total = std::int64_t(prompt.size()) + o.max_new_tokens;
    check_window(total);
    const std::int64_t eos = o.eos_token_id >= 0 ? o.eos_token_id : cfg.eos_token_id;
    KvCache<C> cache(int(layers.size()), 1, total, layers[0].attn.qkv.kv_local(), cfg.head_dim);
    std::vector<std::int64_t> out;
    Tensor<std::int64_t, OnCpu> ids({1, std::int64_t(prompt.size())});
    std::copy(prompt.begin(), prompt.end(), ids.data());
    for (int step = 0; step < o.max_new_tokens; ++step) {
      const std::int64_t n = ids.size(1), at = cache.length();
      const auto rope = to<backend>(rope_table_1d(positions(n, at), int(cfg.head_dim), cfg.rope_theta, cfg.rope_linear_factor));
      BasicAttnArgs<backend> args;
      args.causal = true;
      args.q_offset = at;
      auto h = embed.forward(rank, ids);
      for (int i = 0; i < int(layers.size()); ++i) h = layer_forward(rank, i, h, rope, args, &cache);
      cache.advance(n);
      auto last = norm(narrow(h, 1, n - 1, 1));
      auto logits = lm_head.forward(rank, last);  // (1, 1, V), identical on every rank
      std::int64_t next = pick(to_host_f32(logits), o, step);
      out.push_back(next);
      if (next == eos) break;
      ids = Tensor<std::int64_t, OnCpu>({1, 1});
      ids(0) = next;
    }
    return out;
  }

 private:
  template <class R>
  tensor layer_forward(R& rank, int i, const tensor& x, const RopeTable<backend>& rope, const BasicAttnArgs<backend>& args,
                       KvCache<C>* cache) const {
    const Layer& y = layers[std::size_t(i)];
    auto h = add(x, y.attn.forward(rank, y.input_norm(x), &rope, args, cache, i));
    add_(h, y.mlp.forward(rank, y.post_norm(h)));
    return h;
  }

  std::int64_t pick(const Tensor<float, OnCpu>& logits, const GenerateOptions& o, int step) const {
    const std::int64_t V = logits.numel();
    const float* p = logits.data();
    if (o.temperature <= 0.0f) return std::int64_t(std::max_element(p, p + V) - p);
    const float mx = *std::max_element(p, p + V);
    std::vector<double> w(static_cast<std::size_t>(V));
    double sum = 0;
    for (std::int64_t i = 0; i < V; ++i) sum += (w[std::size_t(i)] = std::exp(double(p[i] - mx) / o.temperature));
    double u = double(philox_uniform(o.seed, std::uint64_t(step))) * sum;
    for (std::int64_t i = 0; i < V; ++i)
      if ((u -= w[std::size_t(i)]) < 0) return i;
    return V - 1;
  }

  void check_window(std::int64_t len) const {
    PDIFF_CHECK(cfg.sliding_window <= 0 || len <= cfg.sliding_window, "MistralTextEncoder: sequence of ", len,
                " tokens exceeds sliding_window ", cfg.sliding_window, " (sliding-window attention is not implemented)");
  }
  static std::vector<std::int64_t> positions(std::int64_t n, std::int64_t from) {
    std::vector<std::int64_t> p(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) p[std::size_t(i)] = from + i;
    return p;
  }
  static std::string find_prefix(const Checkpoint& ck) {
    for (const char* p : {"model.language_model.", "language_model.model.", "model.", ""})
      if (ck.contains(std::string(p) + "embed_tokens.weight")) return p;
    throw Error(detail::cat("MistralTextEncoder: '", ck.dir(), "' has no embed_tokens.weight under any known prefix ",
                            "(model.language_model., language_model.model., model.)"));
  }
  static std::string find_lm_head(const Checkpoint& ck, const std::string& tied) {
    for (const char* n : {"lm_head.weight", "language_model.lm_head.weight"})
      if (ck.contains(n)) return n;
    return tied;
  }
};

}  // namespace pdiff
