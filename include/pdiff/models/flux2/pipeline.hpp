// pdiff/models/flux2/pipeline.hpp — Flux2Pipeline<L>: text (and reference images) → image, from a
// diffusers FLUX.2 folder (model_index.json, transformer/, vae/, text_encoder/, tokenizer/,
// scheduler/), as diffusers' Flux2Pipeline.__call__ (dev) or Flux2KleinPipeline.__call__ (klein)
// runs it, on every rank of layout L.
//
// | model_index _class_name | text encoder      | chat / hidden states | guidance                              |
// |-------------------------|-------------------|----------------------|---------------------------------------|
// | Flux2Pipeline (dev)     | Mistral3          | system turn; 10, 20, 30 | embedded (fed to the model), one branch |
// | Flux2KleinPipeline      | Qwen3ForCausalLM  | user turn, generation prompt, empty think block; 9, 18, 27 | true CFG with negative prompt "" when guidance > 1 and not is_distilled, else one branch |
//
// | phase   | what                                                         | parallel                       |
// |---------|--------------------------------------------------------------|--------------------------------|
// | encode  | chat template → tokens (padded to 512) → hidden states stacked → (1, 512, 3·hidden) | TP shards the encoder; CFG group c encodes only branch c |
// | refs    | each reference image → VAE encode → patchify → BatchNorm → tokens with t = 10 + 10·i | VaePatch (tiled) |
// | denoise | flow-match Euler with FLUX.2's empirical μ; dev: embedded guidance; two branches: true CFG | TP, Ulysses, Ring, CFG |
// | decode  | tokens → BatchNorm⁻¹ → unpatchify → VAE decode → [0, 1]      | VaePatch (tiled or patch)      |
// Initial noise is Philox(seed) (the same on every rank and backend), or the caller's latents
// (tests feed the reference's). Reference images must be at most 1024² pixels; sizes are cut to
// multiples of 16 by a centre crop (diffusers resizes then crops; equal when already a multiple).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/io/chat_prompt.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/io/text_cleanup.hpp"
#include "pdiff/models/flux2/denoise.hpp"
#include "pdiff/models/flux2/latents.hpp"
#include "pdiff/models/flux2/vae.hpp"
#include "pdiff/models/mistral/text_encoder.hpp"

namespace pdiff {

struct Flux2Request {
  std::string prompt;
  std::string negative_prompt;            // true CFG (two branches) only; "" as Flux2KleinPipeline
  std::vector<Tensor<float, OnCpu>> images;  // reference images (1, 3, H, W) in [−1, 1]
  std::int64_t width = 0, height = 0;     // 0: the first reference image's, else 1024
  int steps = 50;
  float guidance = 4.0f;                  // dev: embedded guidance; klein: the true-CFG scale (> 1: CFG)
  std::uint64_t seed = 0;
  const Tensor<float, OnCpu>* latents = nullptr;  // (1, in_channels, H/16, W/16) instead of Philox noise
  std::size_t max_sequence_length = 512;
  VaeRunOptions vae;                      // decode/encode split (whole by default)
  bool progress = true;
  std::optional<float> upsample_temperature;  // dev: rewrite the prompt first (caption upsampling), 0 = greedy
};

struct Flux2Result {
  Tensor<float, OnCpu> image;    // (1, 3, H, W) in [0, 1]
  Tensor<float, OnCpu> latents;  // (1, N, in_channels) final packed latents
  double encode_s = 0, denoise_s = 0, decode_s = 0;
  std::string prompt;            // the prompt the image was made from (the upsampled one when asked)
};

// Centre crop of (1, 3, H, W) to multiples of 16.
inline Tensor<float, OnCpu> flux2_crop16(const Tensor<float, OnCpu>& img) {
  PDIFF_CHECK(img.rank() == 4 && img.size(1) == 3, "Flux2: reference image", img.shape(), " must be (1, 3, H, W)");
  const std::int64_t H = img.size(2), W = img.size(3), h = H / 16 * 16, w = W / 16 * 16;
  PDIFF_CHECK(h > 0 && w > 0, "Flux2: reference image ", W, "x", H, " is smaller than 16x16");
  PDIFF_CHECK(H * W <= 1024 * 1024, "Flux2: reference image ", W, "x", H,
              " has more than 1024x1024 pixels; downscale it first (diffusers resizes it to that area)");
  if (h == H && w == W) return img;
  return crop_region(img, {(H - h) / 2, (W - w) / 2, h, w});
}

enum class Flux2Variant { dev, klein };

// diffusers pipelines/flux2/system_messages.py SYSTEM_MESSAGE_UPSAMPLING_T2I (caption upsampling).
inline constexpr std::string_view flux2_upsampling_system_t2i =
    "You are an expert prompt engineer for FLUX.2 by Black Forest Labs. Rewrite user prompts to be more descriptive "
    "while strictly preserving their core subject and intent.\n\nGuidelines:\n1. Structure: Keep structured inputs "
    "structured (enhance within fields). Convert natural language to detailed paragraphs.\n2. Details: Add concrete "
    "visual specifics - form, scale, textures, materials, lighting (quality, direction, color), shadows, spatial "
    "relationships, and environmental context.\n3. Text in Images: Put ALL text in quotation marks, matching the "
    "prompt's language. Always provide explicit quoted text for objects that would contain text in reality (signs, "
    "labels, screens, etc.) - without it, the model generates gibberish.\n\nOutput only the revised prompt and nothing "
    "else.";

struct Flux2LoadOptions {
  bool caption_upsampling = false;  // dev: load every encoder layer and the LM head for upsample_prompt()
};

// T: the element type of the text encoder and transformer: fp32 on the CPU, bf16 on CUDA by default.
template <class L, class T = default_value_t<typename L::backend>>
class Flux2Pipeline {
 public:
  using C = Ctx<L, T>;
  static_assert(L::cfg <= 2, "Flux2Pipeline: CFG<N> with N > 2; FLUX.2 has at most two guidance branches (prompt, negative)");
  Flux2Transformer<C> transformer;
  MistralTextEncoder<C> text_encoder;  // Mistral3 (dev) or Qwen3 (klein: cfg.qk_norm)
  Tokenizer tokenizer;
  Flux2Vae vae;
  FlowMatchEulerScheduler scheduler;
  Flux2Variant variant = Flux2Variant::dev;
  bool is_distilled = false;  // klein: model_index.json's is_distilled (step-distilled: no CFG)
  std::vector<int> text_layers = {10, 20, 30};

  // Flux2KleinPipeline.do_classifier_free_guidance: two branches (prompt, negative) per step.
  bool true_cfg(float guidance) const { return variant == Flux2Variant::klein && !is_distilled && guidance > 1.0f; }

  // Every rank loads its own shard (collective-free: shards are read straight from the files).
  template <class R>
  static Flux2Pipeline load(R& rank, const std::filesystem::path& dir, const Flux2LoadOptions& opts = {}) {
    namespace fs = std::filesystem;
    const auto index = JsonConfig::load(dir / "model_index.json");
    const auto cls = index.get<std::string>("_class_name");
    PDIFF_CHECK(cls == "Flux2Pipeline" || cls == "Flux2KleinPipeline", "Flux2Pipeline: '",
                (dir / "model_index.json").string(), "' describes a ", cls,
                "; this pipeline runs FLUX.2-dev (Flux2Pipeline, Mistral3 text encoder) and FLUX.2-klein "
                "(Flux2KleinPipeline, Qwen3 text encoder) folders");
    for (const char* part : {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"})
      PDIFF_CHECK(fs::is_directory(dir / part), "Flux2Pipeline: '", dir.string(), "' has no ", part, "/ folder");
    Flux2Pipeline p;
    if (cls == "Flux2KleinPipeline") {
      p.variant = Flux2Variant::klein;
      p.is_distilled = index.get_or<bool>("is_distilled", false);
      p.text_layers = {9, 18, 27};
    }
    const auto ejson = JsonConfig::load(dir / "text_encoder" / "config.json");
    const auto etype = ejson.get_or<std::string>("model_type", "");
    const bool klein = p.variant == Flux2Variant::klein;
    PDIFF_CHECK(klein == (etype == "qwen3"), "Flux2Pipeline: a ", cls, " folder needs a ",
                klein ? "Qwen3 (model_type \"qwen3\")" : "Mistral3 (model_type \"mistral3\" or \"mistral\")",
                " text encoder; '", (dir / "text_encoder" / "config.json").string(), "' has model_type \"", etype, "\"");
    const auto tcfg = Flux2Config::load(dir / "transformer");
    p.transformer = Flux2Transformer<C>::load(Checkpoint::open(dir / "transformer"), tcfg, rank.coords.tp);
    const auto ecfg = MistralConfig::from(ejson);
    const int deepest = *std::max_element(p.text_layers.begin(), p.text_layers.end());
    PDIFF_CHECK(deepest <= ecfg.num_hidden_layers, "Flux2Pipeline: the text encoder has ", ecfg.num_hidden_layers,
                " layers; FLUX.2 reads hidden state ", deepest);
    PDIFF_CHECK(std::int64_t(p.text_layers.size()) * ecfg.hidden_size == tcfg.joint_attention_dim,
                "Flux2Pipeline: ", p.text_layers.size(), " stacked hidden states of ", ecfg.hidden_size,
                " do not match the transformer's joint_attention_dim ", tcfg.joint_attention_dim);
    PDIFF_CHECK(!opts.caption_upsampling || !klein, "Flux2Pipeline: caption upsampling is FLUX.2-dev's (Mistral3); ",
                cls, " has none");
    p.text_encoder = MistralTextEncoder<C>::load(Checkpoint::open(dir / "text_encoder"), ecfg, rank.coords.tp,
                                                 opts.caption_upsampling ? -1 : deepest, opts.caption_upsampling);
    p.tokenizer = Tokenizer::load(dir / "tokenizer");
    p.vae = Flux2Vae::load(dir / "vae");
    PDIFF_CHECK(p.vae.latent_channels() == tcfg.in_channels, "Flux2Pipeline: the VAE gives ", p.vae.latent_channels(),
                " latent channels, the transformer takes ", tcfg.in_channels);
    p.scheduler = FlowMatchEulerScheduler::load(dir / "scheduler");
    return p;
  }

  // Flux2Pipeline.upsample_prompt for text-to-image: the prompt rewritten by the text encoder under
  // the upsampling system message, sampled at `temperature` (0: greedy) with Philox(seed), decoded
  // without special tokens. Same text on every rank. (With reference images the reference shows them
  // to the vision tower, which pdiff does not load: that case is an error.)
  template <class R>
  std::string upsample_prompt(R& rank, const std::string& prompt, float temperature, std::uint64_t seed = 0,
                              int max_new_tokens = 512) const {
    PDIFF_CHECK(variant == Flux2Variant::dev, "Flux2Pipeline: caption upsampling is FLUX.2-dev's; this klein pipeline "
                                              "has none");
    PDIFF_CHECK(text_encoder.has_lm_head, "Flux2Pipeline: load with Flux2LoadOptions{.caption_upsampling = true} to "
                                          "upsample prompts");
    const auto text = flux2_chat_text(prompt, flux2_upsampling_system_t2i, tokenizer.bos_token());
    const auto ids32 = tokenizer.encode(text, /*add_special_tokens=*/false);
    const std::vector<std::int64_t> ids(ids32.begin(), ids32.end());
    const auto gen = text_encoder.generate(
        rank, ids, {.max_new_tokens = max_new_tokens, .temperature = temperature, .seed = seed});
    const std::vector<std::int32_t> out(gen.begin(), gen.end());
    return clean_up_tokenization(tokenizer.decode(out, /*skip_special_tokens=*/true));
  }

  // (1, max_length, |text_layers|·hidden): the pipeline's prompt_embeds
  template <class R>
  typename C::tensor encode_prompt(R& rank, const std::string& prompt, std::size_t max_length = 512) const {
    const auto padded = variant == Flux2Variant::klein ? encode_flux2_klein_prompt(tokenizer, prompt, {.max_length = max_length})
                                                      : encode_flux2_prompt(tokenizer, prompt, {.max_length = max_length});
    const auto S = std::int64_t(padded.ids.size());
    Tensor<std::int64_t, OnCpu> ids({1, S});
    Tensor<std::uint8_t, OnCpu> mask({1, S});
    for (std::int64_t i = 0; i < S; ++i) ids(i) = padded.ids[std::size_t(i)], mask(i) = std::uint8_t(padded.mask[std::size_t(i)]);
    return text_encoder.encode(rank, ids, mask, text_layers);
  }

  template <class R>
  Flux2Result generate(R& rank, const Flux2Request& q) const {
    using clock = std::chrono::steady_clock;
    const auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
    Flux2Result out;
    auto t0 = clock::now();
    PDIFF_CHECK(q.steps >= 1, "Flux2Pipeline: steps (", q.steps, ") must be >= 1");
    out.prompt = q.prompt;
    if (q.upsample_temperature) {
      PDIFF_CHECK(q.images.empty(), "Flux2Pipeline: caption upsampling with reference images needs the text encoder's "
                                    "vision tower, which pdiff does not load; upsample without images");
      out.prompt = upsample_prompt(rank, q.prompt, *q.upsample_temperature, q.seed);
    }
    const int n_branches = true_cfg(q.guidance) ? 2 : 1;
    PDIFF_CHECK(L::cfg <= n_branches, "Flux2Pipeline: CFG<", L::cfg, "> needs ", L::cfg,
                " guidance branches but this run has ", n_branches, " (",
                variant == Flux2Variant::dev ? "FLUX.2-dev uses embedded guidance, no negative branch"
                : is_distilled                ? "the klein model is distilled: is_distilled in model_index.json"
                                              : "guidance <= 1 turns true CFG off",
                "); use a layout without CFG");
    // branch b runs on CFG group b % cfg only (cfg_predict), so each group encodes just its own prompts
    std::vector<Flux2Branch<C>> branches(static_cast<std::size_t>(n_branches));
    for (int b = 0; b < n_branches; ++b)
      if (owns_branch(rank, b)) branches[std::size_t(b)] = branch(rank, b == 0 ? out.prompt : q.negative_prompt, q.max_sequence_length);
    // reference images: tokens (1, Σ hᵢwᵢ, C) and ids with t = 10 + 10·i
    std::vector<Tensor<float, OnCpu>> ref_tok, ref_ids;
    std::int64_t H = q.height, W = q.width;
    for (std::size_t i = 0; i < q.images.size(); ++i) {
      const auto img = flux2_crop16(q.images[i]);
      if (i == 0) {
        H = H ? H : img.size(2);
        W = W ? W : img.size(3);
      }
      auto lat = vae.image_latents(img, q.vae, rank.vae_patch);
      ref_ids.push_back(flux2::latent_ids(lat.size(2), lat.size(3), 10.0f + 10.0f * float(i)));
      ref_tok.push_back(flux2::pack(lat));
    }
    H = H ? H : 1024, W = W ? W : 1024;
    PDIFF_CHECK(H % 16 == 0 && W % 16 == 0, "Flux2Pipeline: height and width (", H, "x", W, ") must be multiples of 16");
    out.encode_s = secs(t0);

    t0 = clock::now();
    const std::int64_t h = H / 16, w = W / 16, Cin = transformer.cfg.in_channels;
    Tensor<float, OnCpu> init;
    if (q.latents) {
      PDIFF_CHECK(q.latents->shape() == Shape({1, Cin, h, w}), "Flux2Pipeline: initial latents", q.latents->shape(),
                  " must be (1, ", Cin, ", ", h, ", ", w, ") for ", W, "x", H);
      init = *q.latents;
    } else {
      init = flux2::noise(q.seed, Cin, h, w);
    }
    out.latents = flux2::pack(init);
    FlowMatchEulerScheduler sched = scheduler;
    sched.set_timesteps(q.steps, flux2_empirical_mu(h * w, q.steps));
    Flux2DenoiseArgs a;
    if (transformer.cfg.guidance_embeds) a.embedded_guidance = q.guidance;
    a.cfg_scale = q.guidance;
    Tensor<float, OnCpu> rt, ri;
    if (!ref_tok.empty()) {
      std::vector<const Tensor<float, OnCpu>*> pt, pi;
      for (std::size_t i = 0; i < ref_tok.size(); ++i) pt.push_back(&ref_tok[i]), pi.push_back(&ref_ids[i]);
      rt = cat<float, OnCpu>(pt, 1), ri = cat<float, OnCpu>(pi, 0);
      a.ref_tokens = &rt, a.ref_ids = &ri;
    }
    std::optional<ProgressBar> bar;
    if (q.progress) bar.emplace("denoise", q.steps, rank.is_root());
    a.progress = bar ? &*bar : nullptr;
    flux2_denoise(rank, transformer, sched, out.latents, flux2::latent_ids(h, w), std::span<const Flux2Branch<C>>(branches), a);
    out.denoise_s = secs(t0);

    t0 = clock::now();
    out.image = Flux2Vae::to_unit(vae.decode_tokens(out.latents, h, w, q.vae, rank.vae_patch));
    out.decode_s = secs(t0);
    return out;
  }

 private:
  template <class R>
  static bool owns_branch(R& rank, int b) {
    if constexpr (L::cfg > 1) return b % L::cfg == rank.cfg.rank();
    else return true;
  }

  template <class R>
  Flux2Branch<C> branch(R& rank, const std::string& prompt, std::size_t max_length) const {
    auto e = encode_prompt(rank, prompt, max_length);
    return {e, flux2::text_ids(e.size(1))};
  }
};

}  // namespace pdiff
