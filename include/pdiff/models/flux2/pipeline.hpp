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

#include <algorithm>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/io/chat_prompt.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/io/text_cleanup.hpp"
#include "pdiff/models/flux2/denoise.hpp"
#include "pdiff/models/flux2/latents.hpp"
#include "pdiff/models/flux2/plan.hpp"
#include "pdiff/models/flux2/vae.hpp"
#include "pdiff/models/mistral/text_encoder.hpp"
#include "pdiff/core/rank_note.hpp"
#include "pdiff/parallel/dp.hpp"

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
  double encode_s = 0, denoise_s = 0, decode_s = 0;  // of the forward that made it (shared by its batch)
  std::string prompt;            // the prompt the image was made from (the upsampled one when asked)
  int batch = 1;                 // images in the forward that made it
  int dp_group = 0;              // the DP group that made it
};

// Many images per call (Flux2Pipeline::generate with a span of requests).
struct Flux2BatchOptions {
  int max_batch = 8;               // images per forward at most
  std::int64_t memory_budget = 0;  // activation bytes per rank one forward may use (0: no limit): a batch
                                   // is split to fit, an image that alone does not fit is refused first
  bool all_ranks = true;           // results on every rank; false: on the root only (others get {})
  bool progress = true;            // each forward's denoise bar and images done / total
};

// How a batch is divided: the same on every rank, before any work.
struct Flux2BatchPlan {
  std::vector<std::int64_t> width, height;        // per request, resolved (reference image / 1024 defaults)
  std::vector<double> cost;                       // per request: tokens × steps × branches
  std::vector<std::int64_t> activation_bytes;     // per request, per rank (an estimate)
  std::vector<int> owner;                         // per request: its DP group
  std::vector<double> load;                       // per DP group: Σ cost
  std::vector<std::vector<std::size_t>> forwards; // request indices sharing one forward, group by group
  std::vector<int> forward_group;                 // per forward: its DP group
};

// Requests for prompts × num_images_per_prompt in diffusers' order (prompt 0's images, then prompt
// 1's, ...), each a copy of `base` with its prompt and seed: seeds[k] for image k, or base.seed + k
// when seeds is empty.
inline std::vector<Flux2Request> flux2_requests(const Flux2Request& base, std::span<const std::string> prompts,
                                                int num_images_per_prompt, std::span<const std::uint64_t> seeds = {}) {
  PDIFF_CHECK(!prompts.empty(), "Flux2: no prompt; a batch needs at least one");
  PDIFF_CHECK(num_images_per_prompt >= 1, "Flux2: num_images_per_prompt ", num_images_per_prompt, " must be >= 1");
  const std::size_t n = prompts.size() * std::size_t(num_images_per_prompt);
  PDIFF_CHECK(seeds.empty() || seeds.size() == n, "Flux2: ", seeds.size(), " seeds for ", n, " images (",
              prompts.size(), " prompts x ", num_images_per_prompt, "); give one per image or none");
  std::vector<Flux2Request> out;
  for (std::size_t p = 0; p < prompts.size(); ++p)
    for (int k = 0; k < num_images_per_prompt; ++k) {
      Flux2Request q = base;
      q.prompt = prompts[p];
      q.seed = seeds.empty() ? base.seed + out.size() : seeds[out.size()];
      out.push_back(std::move(q));
    }
  return out;
}

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
  BasicFlux2Vae<Ctx<Layout<typename L::backend>, T>> vae;  // on the layout's backend, replicated per rank
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
    p.vae = decltype(p.vae)::load(dir / "vae");
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
    const std::string one[] = {prompt};
    return encode_prompts(rank, one, max_length);
  }

  // (P, max_length, |text_layers|·hidden): P prompts through the text encoder in one batch (each row
  // padded to max_length and masked, so a row equals its prompt encoded alone).
  template <class R>
  typename C::tensor encode_prompts(R& rank, std::span<const std::string> prompts, std::size_t max_length = 512) const {
    PDIFF_CHECK(!prompts.empty(), "Flux2Pipeline: no prompt to encode");
    const auto P = std::int64_t(prompts.size());
    Tensor<std::int64_t, OnCpu> ids;
    Tensor<std::uint8_t, OnCpu> mask;
    for (std::int64_t p = 0; p < P; ++p) {
      const auto& text = prompts[std::size_t(p)];
      const auto padded = variant == Flux2Variant::klein ? encode_flux2_klein_prompt(tokenizer, text, {.max_length = max_length})
                                                        : encode_flux2_prompt(tokenizer, text, {.max_length = max_length});
      const auto S = std::int64_t(padded.ids.size());
      if (p == 0) ids = Tensor<std::int64_t, OnCpu>({P, S}), mask = Tensor<std::uint8_t, OnCpu>({P, S});
      PDIFF_CHECK(S == ids.size(1), "Flux2Pipeline: prompts padded to different lengths (", S, ", ", ids.size(1), ")");
      for (std::int64_t i = 0; i < S; ++i)
        ids(p * S + i) = padded.ids[std::size_t(i)], mask(p * S + i) = std::uint8_t(padded.mask[std::size_t(i)]);
    }
    return text_encoder.encode(rank, ids, mask, text_layers);
  }

  // One image.
  template <class R>
  Flux2Result generate(R& rank, const Flux2Request& q) const {
    const Flux2Request* one[] = {&q};
    return std::move(run_forward(rank, one, q.progress ? "denoise" : "").front());
  }

  // Many images, one request each (flux2_requests builds them from prompts, counts and seeds): the
  // DP groups share them by cost (tokens × steps × branches, dp_assign), each group runs its share in
  // forwards of up to max_batch images of the same size and settings (B > 1 through the text encoder,
  // the transformer and the VAE; requests with reference images or caption upsampling run alone),
  // and the results come back in request order on every rank (or on the root only). Image i is the
  // same as generate(rank, requests[i]) made alone: its noise is Philox(its seed).
  template <class R>
  std::vector<Flux2Result> generate(R& rank, std::span<const Flux2Request> requests,
                                    const Flux2BatchOptions& o = {}) const {
    const auto plan = plan_batch(requests, o);
    const int me = rank.coords.dp;
    std::vector<Flux2Result> out(requests.size());
    const std::size_t mine = std::size_t(std::count(plan.owner.begin(), plan.owner.end(), me));
    std::optional<ProgressBar> images;
    std::size_t done = 0;
    for (std::size_t f = 0; f < plan.forwards.size(); ++f) {
      if (plan.forward_group[f] != me) continue;
      const auto& idx = plan.forwards[f];
      std::vector<const Flux2Request*> qs;
      for (auto i : idx) qs.push_back(&requests[i]);
      std::string label;
      if (o.progress && requests.size() == 1) label = "denoise";
      else if (o.progress)
        label = "denoise " + std::to_string(done + 1) + (idx.size() > 1 ? "-" + std::to_string(done + idx.size()) : "") +
                "/" + std::to_string(mine) + (L::dp > 1 ? " (DP group " + std::to_string(me) + ")" : "");
      auto rs = run_forward(rank, qs, label);
      for (std::size_t k = 0; k < idx.size(); ++k) rs[k].dp_group = me, out[idx[k]] = std::move(rs[k]);
      done += idx.size();
      if (o.progress && requests.size() > 1 && !images) images.emplace(L::dp > 1 ? "images (DP group " + std::to_string(me) + ", " + std::to_string(requests.size()) + " in the batch)" : "images", int(mine), rank.is_root(), "image");
      if (images) images->update(int(done));
    }
    if (images) images->finish();
    if constexpr (L::dp > 1) gather_results(rank, plan, out, o.all_ranks);
    if (!o.all_ranks && !rank.is_root()) return {};
    return out;
  }

  // How generate(rank, requests, o) divides the work: the same on every rank, computed before any.
  Flux2BatchPlan plan_batch(std::span<const Flux2Request> requests, const Flux2BatchOptions& o = {}) const {
    PDIFF_CHECK(!requests.empty(), "Flux2Pipeline: an empty batch; give at least one request");
    PDIFF_CHECK(o.max_batch >= 1, "Flux2Pipeline: max_batch ", o.max_batch, " must be >= 1");
    PDIFF_CHECK(o.memory_budget >= 0, "Flux2Pipeline: memory budget ", o.memory_budget, " bytes must be >= 0");
    Flux2BatchPlan p;
    const std::size_t n = requests.size();
    std::vector<double> cost(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& q = requests[i];
      PDIFF_CHECK(q.steps >= 1, "Flux2Pipeline: request ", i, ": steps (", q.steps, ") must be >= 1");
      PDIFF_CHECK(q.max_sequence_length >= 1, "Flux2Pipeline: request ", i, ": max_sequence_length must be >= 1");
      auto [W, H] = resolved_size(q);
      PDIFF_CHECK(H % 16 == 0 && W % 16 == 0 && H > 0 && W > 0, "Flux2Pipeline: request ", i, ": height and width (",
                  H, "x", W, ") must be positive multiples of 16");
      p.width.push_back(W), p.height.push_back(H);
      const std::int64_t ref = reference_tokens(q);
      const std::int64_t tokens = (H / 16) * (W / 16) + ref + std::int64_t(q.max_sequence_length);
      cost[i] = double(tokens) * q.steps * (true_cfg(q.guidance) ? 2 : 1);
      const std::int64_t a = image_activation_bytes(q, W, H, ref);
      p.activation_bytes.push_back(a);
      PDIFF_CHECK(o.memory_budget == 0 || a <= o.memory_budget, "Flux2Pipeline: request ", i, " (", W, "x", H,
                  ") needs about ", a / 1048576, " MiB of activations per rank, more than the memory budget of ",
                  o.memory_budget / 1048576, " MiB; use a smaller image, a layout with more ranks, or a larger budget");
    }
    p.cost = cost;
    p.owner = dp_assign(cost, L::dp);
    p.load = dp_loads(cost, p.owner, L::dp);
    // per group, in request order: the first open forward of the same settings with room takes it
    for (int g = 0; g < L::dp; ++g) {
      const std::size_t first = p.forwards.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (p.owner[i] != g) continue;
        const auto& q = requests[i];
        bool placed = false;
        if (batchable(q))
          for (std::size_t f = first; f < p.forwards.size() && !placed; ++f) {
            auto& fw = p.forwards[f];
            const std::size_t j = fw.front();
            std::int64_t bytes = 0;
            for (auto k : fw) bytes += p.activation_bytes[k];
            const bool fits = o.memory_budget == 0 || bytes + p.activation_bytes[i] <= o.memory_budget;
            if (batchable(requests[j]) && same_settings(q, requests[j]) && p.width[i] == p.width[j] &&
                p.height[i] == p.height[j] && std::int64_t(fw.size()) < o.max_batch && fits)
              fw.push_back(i), placed = true;
          }
        if (!placed) p.forwards.push_back({i}), p.forward_group.push_back(g);
      }
    }
    return p;
  }

 private:
  template <class R>
  static bool owns_branch(R& rank, int b) {
    if constexpr (L::cfg > 1) return b % L::cfg == rank.cfg.rank();
    else return true;
  }

  // The tokens of a request's reference images (joined to the sequence).
  static std::int64_t reference_tokens(const Flux2Request& q) {
    std::int64_t n = 0;
    for (auto& img : q.images) n += (img.size(2) / 16) * (img.size(3) / 16);
    return n;
  }
  // The image size a request makes: its own, else its first reference image's (cut to 16), else 1024².
  static std::pair<std::int64_t, std::int64_t> resolved_size(const Flux2Request& q) {
    std::int64_t W = q.width, H = q.height;
    if (!q.images.empty()) {
      const auto& img = q.images.front();
      PDIFF_CHECK(img.rank() == 4, "Flux2: reference image", img.shape(), " must be (1, 3, H, W)");
      H = H ? H : img.size(2) / 16 * 16;
      W = W ? W : img.size(3) / 16 * 16;
    }
    return {W ? W : 1024, H ? H : 1024};
  }
  static bool batchable(const Flux2Request& q) { return q.images.empty() && !q.upsample_temperature; }
  // Requests that may share a forward: everything but prompt, negative prompt, seed and latents equal.
  static bool same_settings(const Flux2Request& a, const Flux2Request& b) {
    return a.steps == b.steps && a.guidance == b.guidance && a.max_sequence_length == b.max_sequence_length &&
           a.vae == b.vae;
  }

  // Activation bytes per rank of one image in a forward: the largest of the text encoder's, the
  // transformer's (flux2_activation_bytes) and the VAE decoder's (three full-resolution maps of its
  // last block's channels, fp32 on the host) — estimates, as the planner's.
  // ref_tokens: the reference images' tokens, joined to the sequence like the text's.
  std::int64_t image_activation_bytes(const Flux2Request& q, std::int64_t W, std::int64_t H, std::int64_t ref_tokens) const {
    const std::int64_t S = std::int64_t(q.max_sequence_length), e = std::int64_t(sizeof(T));
    const auto& ec = text_encoder.cfg;
    const std::int64_t enc =
        S * (std::int64_t(text_layers.size() + 4) * ec.hidden_size + 2 * ec.intermediate_size / L::tp) * e;
    const std::int64_t dit =
        flux2_activation_bytes(transformer.cfg, W, H, S + ref_tokens, L::tp, L::ulysses * L::ring, int(e));
    const auto& ch = vae.kl.config.decoder_channels();
    const std::int64_t dec = ch.empty() ? 0 : 3 * ch.front() * W * H * std::int64_t(sizeof(float));
    return std::max({enc, dit, dec});
  }

  // One forward of the images qs (B = |qs|; more than one only for batchable requests of the same
  // size and settings): encode, denoise, decode. Returns one result per image, in order.
  template <class R>
  std::vector<Flux2Result> run_forward(R& rank, std::span<const Flux2Request* const> qs, const std::string& bar_label) const {
    using clock = std::chrono::steady_clock;
    const auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
    const Flux2Request& q = *qs.front();
    const auto B = std::int64_t(qs.size());
    std::vector<Flux2Result> out(qs.size());
    auto t0 = clock::now();
    for (auto* r : qs) {
      PDIFF_CHECK(r->steps >= 1, "Flux2Pipeline: steps (", r->steps, ") must be >= 1");
      PDIFF_CHECK(B == 1 || (batchable(*r) && same_settings(*r, q) && r->width == q.width && r->height == q.height),
                  "Flux2Pipeline: images of one forward must share size and settings, without reference images");
    }
    for (std::int64_t b = 0; b < B; ++b) out[std::size_t(b)].prompt = qs[std::size_t(b)]->prompt, out[std::size_t(b)].batch = int(B);
    const auto [W, H] = resolved_size(q);
    // what an out-of-memory error on this rank names as predicted: the weights it holds now and the
    // planner's activation estimate for this forward
    const PredictedBytes predicted(
        std::int64_t(detail::thread_byte_counter<typename L::backend>().live.load()) +
            B * image_activation_bytes(q, W, H, reference_tokens(q)),
        detail::cat("the weights it held when the forward began and the activations of ", B, " image(s) of ", W, "x", H));
    if (q.upsample_temperature) {
      PDIFF_CHECK(q.images.empty(), "Flux2Pipeline: caption upsampling with reference images needs the text encoder's "
                                    "vision tower, which pdiff does not load; upsample without images");
      out[0].prompt = upsample_prompt(rank, q.prompt, *q.upsample_temperature, q.seed);
    }
    const int n_branches = true_cfg(q.guidance) ? 2 : 1;
    PDIFF_CHECK(L::cfg <= n_branches, "Flux2Pipeline: CFG<", L::cfg, "> needs ", L::cfg,
                " guidance branches but this run has ", n_branches, " (",
                variant == Flux2Variant::dev ? "FLUX.2-dev uses embedded guidance, no negative branch"
                : is_distilled                ? "the klein model is distilled: is_distilled in model_index.json"
                                              : "guidance <= 1 turns true CFG off",
                "); use a layout without CFG");
    // branch b runs on CFG group b % cfg only (cfg_predict), so each group encodes just its own
    // prompts; a text that several images share is encoded once
    std::vector<Flux2Branch<C>> branches(static_cast<std::size_t>(n_branches));
    for (int b = 0; b < n_branches; ++b) {
      if (!owns_branch(rank, b)) continue;
      std::vector<std::string> texts;
      std::vector<std::int64_t> row;
      for (std::int64_t i = 0; i < B; ++i) {
        const std::string& t = b == 0 ? out[std::size_t(i)].prompt : qs[std::size_t(i)]->negative_prompt;
        const auto at = std::find(texts.begin(), texts.end(), t);
        row.push_back(at - texts.begin());
        if (at == texts.end()) texts.push_back(t);
      }
      auto e = encode_prompts(rank, texts, q.max_sequence_length);
      if (B > 1 || texts.size() > 1) {
        std::vector<typename C::tensor> rows;
        for (auto r : row) rows.push_back(narrow(e, 0, r, 1));
        std::vector<const typename C::tensor*> ptrs;
        for (auto& r : rows) ptrs.push_back(&r);
        e = cat<T, typename L::backend>(ptrs, 0);
      }
      branches[std::size_t(b)] = {e, flux2::text_ids(e.size(1))};
    }
    // reference images: tokens (1, Σ hᵢwᵢ, C) and ids with t = 10 + 10·i
    std::vector<Tensor<float, OnCpu>> ref_tok, ref_ids;
    for (std::size_t i = 0; i < q.images.size(); ++i) {
      auto lat = vae.image_latents(flux2_crop16(q.images[i]), q.vae, rank.vae_patch);
      ref_ids.push_back(flux2::latent_ids(lat.size(2), lat.size(3), 10.0f + 10.0f * float(i)));
      ref_tok.push_back(flux2::pack(lat));
    }
    PDIFF_CHECK(H % 16 == 0 && W % 16 == 0, "Flux2Pipeline: height and width (", H, "x", W, ") must be multiples of 16");
    const double encode_s = secs(t0);

    t0 = clock::now();
    const std::int64_t h = H / 16, w = W / 16, Cin = transformer.cfg.in_channels;
    std::vector<Tensor<float, OnCpu>> init;
    for (auto* r : qs) {
      if (r->latents) {
        PDIFF_CHECK(r->latents->shape() == Shape({1, Cin, h, w}), "Flux2Pipeline: initial latents", r->latents->shape(),
                    " must be (1, ", Cin, ", ", h, ", ", w, ") for ", W, "x", H);
        init.push_back(*r->latents);
      } else {
        init.push_back(flux2::noise(r->seed, Cin, h, w));
      }
    }
    std::vector<const Tensor<float, OnCpu>*> iptr;
    for (auto& t : init) iptr.push_back(&t);
    Tensor<float, OnCpu> latents = flux2::pack(B == 1 ? init[0] : cat<float, OnCpu>(iptr, 0));
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
    if (!bar_label.empty()) bar.emplace(bar_label, q.steps, rank.is_root());
    a.progress = bar ? &*bar : nullptr;
    flux2_denoise(rank, transformer, sched, latents, flux2::latent_ids(h, w), std::span<const Flux2Branch<C>>(branches), a);
    const double denoise_s = secs(t0);

    t0 = clock::now();
    const auto image = Flux2Vae::to_unit(vae.decode_tokens(latents, h, w, q.vae, rank.vae_patch));
    const double decode_s = secs(t0);
    for (std::int64_t b = 0; b < B; ++b) {
      auto& r = out[std::size_t(b)];
      r.image = B == 1 ? image : narrow(image, 0, b, 1);
      r.latents = B == 1 ? latents : narrow(latents, 0, b, 1);
      r.encode_s = encode_s, r.denoise_s = denoise_s, r.decode_s = decode_s;
    }
    return out;
  }

  // Every image from the DP group that made it: broadcast over the DP axis (all ranks), or sent to the
  // root's DP peer 0 (root only). Shapes are known everywhere from the plan, so only data moves.
  template <class R>
  void gather_results(R& rank, const Flux2BatchPlan& p, std::vector<Flux2Result>& out, bool all_ranks) const {
    const bool root_line = rank.index % (L::world_size / L::dp) == 0;  // the DP group holding world rank 0
    if (!all_ranks && !root_line) return;
    const int me = rank.dp.rank();
    const std::int64_t Cin = transformer.cfg.in_channels;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const int g = p.owner[i];
      auto& r = out[i];
      if (g != me) {
        r.image = Tensor<float, OnCpu>({1, 3, p.height[i], p.width[i]});
        r.latents = Tensor<float, OnCpu>({1, (p.height[i] / 16) * (p.width[i] / 16), Cin});
      }
      double meta[5] = {r.encode_s, r.denoise_s, r.decode_s, double(r.batch), double(r.prompt.size())};
      auto move = [&](auto* data, std::size_t n) {
        if (all_ranks) rank.dp.broadcast(data, n, g);
        else if (me == g && g != 0) rank.dp.send(data, n, 0);
        else if (me == 0 && g != 0) rank.dp.recv(data, n, g);
      };
      move(r.image.data(), std::size_t(r.image.numel()));
      move(r.latents.data(), std::size_t(r.latents.numel()));
      move(meta, 5);
      if (g != me) {
        r.encode_s = meta[0], r.denoise_s = meta[1], r.decode_s = meta[2], r.batch = int(meta[3]), r.dp_group = g;
        r.prompt.resize(std::size_t(meta[4]));
      }
      std::vector<std::uint8_t> text(r.prompt.begin(), r.prompt.end());
      if (!text.empty()) move(text.data(), text.size());
      if (g != me) r.prompt.assign(text.begin(), text.end());
    }
  }
};

}  // namespace pdiff
