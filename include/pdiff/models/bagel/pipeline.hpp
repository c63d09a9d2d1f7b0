// pdiff/models/bagel/pipeline.hpp — BagelPipeline<L, T>: BAGEL-7B-MoT text-to-image from the released
// folder (llm_config.json, ema.safetensors, ae.safetensors, tokenizer.json), on TP, CFG and VaePatch
// layouts. Official code: modeling/bagel/bagel.py (prepare_prompts, prepare_vae_latent, generate_image,
// _forward_flow), inferencer.py (contexts), modeling/autoencoder.py (the FLUX.1 AE).
//
// | stage    | what                                                                                     |
// |----------|------------------------------------------------------------------------------------------|
// | contexts | gen = `<|im_start|> prompt <|im_end|>` prefilled causally into a KV cache (understanding weights); cfg_text = empty; cfg_img = the text only (for text-to-image the same as gen) |
// | latents  | x (h·w, 4·z) tokens of 2x2 latent patches, h, w = H/16, W/16; Philox(seed) noise or the caller's |
// | step     | block `<|vision_start|> x… <|vision_end|>` at one RoPE position after its context, full attention; latent rows = vae2llm(x) + time_embedder(t) + latent_pos_embed[row·max + col] on the generation weights; v = llm2vae(norm_moe_gen(h)) |
// | schedule | t = linspace(1, 0, n), t ← s·t / (1 + (s−1)·t) (shift s = 3); x ← x − v·(t_i − t_{i+1}) for n−1 steps |
// | guidance | inside cfg_interval (lo < t ≤ hi): v_t = v_ct + s_t(v − v_ct), v = v_ci + s_i(v_t − v_ci), renorm global / channel / text_channel (sampler.hpp) |
// | decode   | unpatchify, z / 0.3611 + 0.1159, FLUX.1 decoder, clamp(x/2 + 1/2, 0, 1); whole or over VaePatch |
// Branches run on the CFG axis (branch b on CFG rank b % N); each rank prefills only its branches'
// contexts. For text-to-image the cfg_img context is gen's, so its velocity is gen's: two branches.
// Where it runs: the LLM and the AE in C (the layout's backend and type); vae2llm / llm2vae and the position
// table on that backend in fp32; the timestep MLP (one row), the (h·w, 4·z) latents, the scheduler and the
// guidance combine on the host.
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "pdiff/comm/self_comm.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/io/image.hpp"
#include "pdiff/io/progress.hpp"
#include "pdiff/io/resize.hpp"
#include "pdiff/io/tokenizer.hpp"
#include "pdiff/layers/replicated.hpp"
#include "pdiff/layers/timestep.hpp"
#include "pdiff/models/autoencoder_kl/autoencoder_kl.hpp"
#include "pdiff/models/autoencoder_kl/bfl_names.hpp"
#include "pdiff/models/bagel/llm.hpp"
#include "pdiff/models/bagel/sampler.hpp"
#include "pdiff/models/bagel/vit.hpp"
#include "pdiff/parallel/cfg_parallel.hpp"
#include "pdiff/stage/kv_transfer.hpp"

namespace pdiff {

// data/transforms.py ImageTransform's resize (MaxLongEdgeMinShortEdgeResize): the long edge at most
// max_size, the short edge at least min_size, both multiples of stride, at most max_pixels; Pillow bicubic.
struct BagelImageTransform {
  std::int64_t max_size = 1024, min_size = 512, stride = 16, max_pixels = 14 * 14 * 9 * 1024;

  // (width, height) after the resize of an image of (w, h), as the reference computes it (Python's round
  // is to nearest even).
  std::pair<std::int64_t, std::int64_t> size(std::int64_t w, std::int64_t h) const {
    PDIFF_CHECK(w > 0 && h > 0, "BAGEL: image size ", w, "x", h, " must be positive");
    auto divisible = [&](double v) { return std::max<std::int64_t>(stride, std::int64_t(std::nearbyint(v / double(stride))) * stride); };
    auto apply = [&](double W, double H, double s) {
      return std::pair{divisible(std::nearbyint(W * s)), divisible(std::nearbyint(H * s))};
    };
    double scale = std::min(double(max_size) / double(std::max(w, h)), 1.0);
    scale = std::max(scale, double(min_size) / double(std::min(w, h)));
    auto [nw, nh] = apply(double(w), double(h), scale);
    if (double(nw * nh) > double(max_pixels)) {
      std::tie(nw, nh) = apply(double(nw), double(nh), double(max_pixels) / double(nw * nh));
    }
    if (std::max(nw, nh) > max_size) std::tie(nw, nh) = apply(double(nw), double(nh), double(max_size) / double(std::max(nw, nh)));
    return {nw, nh};
  }
  Image operator()(const Image& img) const {
    const auto [w, h] = size(img.width, img.height);
    return resize_bicubic(img, int(w), int(h));
  }
  // ToTensor + Normalize(0.5, 0.5): (3, H, W) in [−1, 1] with torchvision's rounding
  static Tensor<float, OnCpu> to_tensor(const Image& img) {
    PDIFF_CHECK(img.channels == 3, "BAGEL: images must be RGB");
    Tensor<float, OnCpu> t({3, img.height, img.width});
    const std::int64_t hw = std::int64_t(img.height) * img.width;
    for (std::int64_t i = 0; i < hw; ++i)
      for (int c = 0; c < 3; ++c) t(c * hw + i) = (float(img.pixels[std::size_t(i * 3 + c)]) / 255.0f - 0.5f) / 0.5f;
    return t;
  }
};

struct BagelRequest {
  std::string prompt;
  std::vector<std::int32_t> prompt_ids;  // instead of tokenizing `prompt` (the tokens between <|im_start|> and <|im_end|>)
  std::int64_t width = 1024, height = 1024;  // multiples of 16
  BagelGuidance guidance;
  int num_timesteps = 50;  // the reference's: n timesteps, n − 1 model steps
  float timestep_shift = 3.0f;
  std::uint64_t seed = 0;
  const Tensor<float, OnCpu>* noise = nullptr;  // (h·w, 4·z) packed initial latents instead of Philox noise
  VaeRunOptions vae;
  bool progress = true;
  // Image editing: the input image; the output takes its size after vae_transform (width/height unused).
  const Image* image = nullptr;
  BagelImageTransform vae_transform{1024, 512, 16}, vit_transform{980, 224, 14};  // app.py's
  const Tensor<float, OnCpu>* encode_noise = nullptr;  // (z, h, w): the posterior sample's ε instead of Philox
  std::function<void(int rank, int step, int steps)> on_step;  // after each step on every rank (throw to cancel)
};

struct BagelResult {
  Tensor<float, OnCpu> image;   // (1, 3, H, W) in [0, 1]
  Tensor<float, OnCpu> latent;  // (h·w, 4·z) final packed latents
  std::int64_t width = 0, height = 0;
  double prefill_s = 0, denoise_s = 0, decode_s = 0;
};

template <class L, class T = default_value_t<typename L::backend>>
class BagelPipeline {
 public:
  using layout = L;
  using C = Ctx<L, T>;
  using HostTensor = Tensor<float, OnCpu>;
  using Context = typename BagelLlm<C>::Context;
  static constexpr int branches_max = 3;  // gen, cfg_text, cfg_img
  static_assert(L::ep == 1, "BAGEL has no experts: EP<N> does not apply");

  BagelConfig cfg;
  BagelLlm<C> llm;
  Replicated<HostCtx> time_mlp0, time_mlp2;  // one row per step: on the host
  // every latent token, every step: on the layout's backend in fp32 (the sums and the velocity that feeds the
  // fp32 scheduler are rounded to T once, as the reference's fp32 projections)
  using F = Ctx<Layout<typename L::backend>, float>;
  Replicated<F> vae2llm, llm2vae;
  typename F::tensor latent_pos_embed;  // (max_latent_size², hidden)
  BasicAutoencoderKL<Ctx<Layout<typename L::backend>, T>> vae;  // on the layout's backend, replicated per rank
  std::optional<BagelVit<C>> vit;  // when the folder has vit_config.json (editing)
  Tokenizer tokenizer;
  std::int32_t bos = -1, eos = -1, start_of_image = -1, end_of_image = -1;

  template <class R>
  static BagelPipeline load(R& rank, const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    for (const char* f : {"llm_config.json", "ema.safetensors", "ae.safetensors", "tokenizer.json"})
      PDIFF_CHECK(fs::is_regular_file(dir / f), "BAGEL: '", dir.string(), "' has no ", f,
                  " (give the BAGEL-7B-MoT folder: llm_config.json, ema.safetensors, ae.safetensors, tokenizer.json)");
    BagelPipeline p;
    const auto j = JsonConfig::load(dir / "llm_config.json");
    p.cfg = BagelConfig::from_llm(j);
    auto ck = Checkpoint::open_files({dir / "ema.safetensors", dir / "ae.safetensors"});
    const auto ae = bfl_autoencoder_config(ck);
    p.cfg.latent_channels = ae.latent_channels;
    p.cfg.vae_downsample = ae.scale();
    const auto pe = ck.shape("latent_pos_embed.pos_embed");
    const auto side = std::int64_t(std::llround(std::sqrt(double(pe.at(0)))));
    PDIFF_CHECK(pe.size() == 2 && side * side == pe[0] && pe[1] == p.cfg.hidden_size, "BAGEL: latent_pos_embed.pos_embed",
                " must be (max_latent_size², hidden_size ", p.cfg.hidden_size, ")");
    p.cfg.max_latent_size = side;
    const auto v2l = ck.shape("vae2llm.weight");
    PDIFF_CHECK(v2l.size() == 2 && v2l[0] == p.cfg.hidden_size && v2l[1] % p.cfg.latent_channels == 0,
                "BAGEL: vae2llm.weight must be (hidden_size, patch² · z channels)");
    const auto pp = std::int64_t(std::llround(std::sqrt(double(v2l[1] / p.cfg.latent_channels))));
    PDIFF_CHECK(pp * pp * p.cfg.latent_channels == v2l[1], "BAGEL: vae2llm takes ", v2l[1],
                " features, not patch² · ", p.cfg.latent_channels);
    p.cfg.latent_patch_size = pp;
    p.llm = BagelLlm<C>::load(ck, p.cfg, rank);
    const std::int64_t H = p.cfg.hidden_size, PD = p.cfg.patch_latent_dim();
    auto linear = [&]<class Cx>(Replicated<Cx>& l, const std::string& n, std::int64_t in, std::int64_t out) {
      l = Replicated<Cx>(in, out, true);
      const auto b = ck.read(n + ".bias");
      l.load(ck.read(n + ".weight"), &b);
    };
    linear(p.time_mlp0, "time_embedder.mlp.0", 256, H);
    linear(p.time_mlp2, "time_embedder.mlp.2", H, H);
    linear(p.vae2llm, "vae2llm", PD, H);
    linear(p.llm2vae, "llm2vae", H, PD);
    p.latent_pos_embed = to_ctx<F>(ck.read("latent_pos_embed.pos_embed"));
    p.vae = decltype(p.vae)::load(ck, ae);
    if (fs::is_regular_file(dir / "vit_config.json"))
      p.vit = BagelVit<C>::load(ck, BagelVitConfig::from(JsonConfig::load(dir / "vit_config.json")), p.cfg.hidden_size);
    p.tokenizer = Tokenizer::load(dir);
    p.bos = p.special("<|im_start|>");
    p.eos = p.special("<|im_end|>");
    p.start_of_image = p.special("<|vision_start|>");
    p.end_of_image = p.special("<|vision_end|>");
    return p;
  }

  static HostTensor host_linear(const Replicated<HostCtx>& l, const HostTensor& x) {
    auto y = l.core.matmul(x);
    l.core.add_bias(y);
    return y;
  }

  std::int32_t special(const std::string& name) const {
    const auto id = tokenizer.token_to_id(name);
    PDIFF_CHECK(id >= 0, "BAGEL: the tokenizer has no '", name, "' token");
    return id;
  }

  // `<|im_start|> prompt <|im_end|>` (prepare_prompts).
  std::vector<std::int64_t> text_ids(const BagelRequest& q) const {
    const auto prompt = q.prompt_ids.empty() ? tokenizer.encode(q.prompt) : q.prompt_ids;
    std::vector<std::int64_t> ids{bos};
    ids.insert(ids.end(), prompt.begin(), prompt.end());
    ids.push_back(eos);
    return ids;
  }

  // Appends text to a context (forward_cache_update_text: causal, understanding weights).
  template <class R>
  void prefill_text(R& rank, Context& ctx, std::span<const std::int64_t> ids) const {
    const std::int64_t n = std::int64_t(ids.size());
    std::vector<std::int64_t> pos(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) pos[std::size_t(i)] = ctx.rope + i;
    const MotRun run{MotMode::und, 0, n};
    llm.forward(rank, llm.embed_tokens(rank, ids), std::span(&run, 1), pos, true, ctx, true);
    ctx.rope += n;
  }

  // The timestep embedding (1, H) of t ∈ [0, 1] (TimestepEmbedder: [cos, sin] of 256 frequencies, MLP).
  HostTensor time_embed(float t) const {
    const float ts[] = {t};
    return host_linear(time_mlp2, silu(host_linear(time_mlp0, timestep_features(ts, 256, true))));
  }

  // Latent tokens' LLM inputs (N, H) in C: vae2llm(x) + time_embed(t) + latent_pos_embed[i·max + j].
  template <class R>
  typename C::tensor latent_inputs(R& rank, const HostTensor& x, float t, std::int64_t h, std::int64_t w) const {
    auto y = vae2llm.forward(rank, to_ctx<F>(x));
    add_(y, to_ctx<F>(time_embed(t).view({cfg.hidden_size})));  // every row
    Tensor<std::int32_t, OnCpu> at({h * w});
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) at(i * w + j) = std::int32_t(i * cfg.max_latent_size + j);
    add_(y, index_rows(latent_pos_embed, to<typename L::backend>(at)));
    if constexpr (std::is_same_v<T, float>) return y;
    else return convert<T>(y);
  }

  // An image block `<|vision_start|> tokens (N, H) <|vision_end|>` through the LLM at one RoPE position after
  // ctx, full attention; the tokens on `mode`'s weights, the markers on the understanding ones. update:
  // appended to ctx (which then moves on one position). Returns the last hidden states (1, N + 2, H).
  template <class R>
  typename C::tensor image_block(R& rank, Context& ctx, const typename C::tensor& tokens, MotMode mode, bool update) const {
    const std::int64_t N = tokens.size(0), H = cfg.hidden_size;
    const std::int64_t marks[] = {start_of_image, end_of_image};
    const auto m = llm.embed_tokens(rank, marks);  // (1, 2, H)
    const auto start = narrow(m, 1, 0, 1), end = narrow(m, 1, 1, 1), body = tokens.view({1, N, H});
    const typename C::tensor* parts[] = {&start, &body, &end};
    const auto seq = cat(std::span<const typename C::tensor* const>(parts), 1);
    const MotRun mixed[] = {{MotMode::und, 0, 1}, {mode, 1, N}, {MotMode::und, N + 1, 1}};
    const MotRun und[] = {{MotMode::und, 0, N + 2}};  // one run: one all-reduce per projection, not three
    const std::vector<std::int64_t> pos(std::size_t(N + 2), ctx.rope);
    auto hidden = mode == MotMode::und ? llm.forward(rank, seq, und, pos, false, ctx, update)
                                       : llm.forward(rank, seq, mixed, pos, false, ctx, update);
    if (update) ctx.rope += 1;
    return hidden;
  }

  // One branch's velocity (N, 4·z) for latents x at t against its context (_forward_flow, no update).
  template <class R>
  HostTensor velocity(R& rank, Context& ctx, const HostTensor& x, float t, std::int64_t h, std::int64_t w) const {
    const std::int64_t N = h * w, H = cfg.hidden_size;
    PDIFF_CHECK(x.rank() == 2 && x.size(0) == N && x.size(1) == cfg.patch_latent_dim(), "BAGEL: latents", x.shape(),
                " must be (", N, ", ", cfg.patch_latent_dim(), ")");
    const auto hidden = image_block(rank, ctx, latent_inputs(rank, x, t, h, w), MotMode::gen, false);
    const auto g = llm.norm[int(MotMode::gen)](narrow(hidden, 1, 1, N));
    if constexpr (std::is_same_v<T, float>) return to_host_f32(llm2vae.forward(rank, g.view({N, H})));
    else return to_host_f32(llm2vae.forward(rank, convert<float>(g).view({N, H})));
  }

  // (N, 4·z) packed tokens (h, w, p, q, c) → (1, z, h·p, w·q)
  HostTensor unpatchify(const HostTensor& x, std::int64_t h, std::int64_t w) const {
    const std::int64_t p = cfg.latent_patch_size, z = cfg.latent_channels;
    HostTensor out({1, z, h * p, w * p});
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j)
        for (std::int64_t a = 0; a < p; ++a)
          for (std::int64_t b = 0; b < p; ++b)
            for (std::int64_t c = 0; c < z; ++c)
              out((c * h * p + i * p + a) * w * p + j * p + b) = x((i * w + j) * p * p * z + (a * p + b) * z + c);
    return out;
  }

  // (1, z, h·p, w·p) latents → (h·w, p·p·z) tokens in (h, w, p, q, c) order
  HostTensor patchify(const HostTensor& z, std::int64_t h, std::int64_t w) const {
    const std::int64_t p = cfg.latent_patch_size, Z = cfg.latent_channels, W = z.size(3), Hh = z.size(2);
    HostTensor out({h * w, p * p * Z});
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j)
        for (std::int64_t a = 0; a < p; ++a)
          for (std::int64_t b = 0; b < p; ++b)
            for (std::int64_t c = 0; c < Z; ++c)
              out((i * w + j) * p * p * Z + (a * p + b) * Z + c) = z((c * Hh + i * p + a) * W + j * p + b);
    return out;
  }

  // An input image for editing, as the reference prepares it: resized by the VAE transform (its size is
  // the output's), its latent tokens (the posterior sampled, scaled) and its ViT patches.
  struct EditImage {
    Image image;                 // after vae_transform's resize
    std::int64_t h = 0, w = 0;   // latent tokens per side
    HostTensor latent_tokens;    // (h·w, p·p·z)
    HostTensor vit_patches;      // (rows·cols, 3·14·14)
    std::int64_t vit_rows = 0, vit_cols = 0;
  };
  template <class R>
  EditImage prepare_edit_image(R& rank, const BagelRequest& q) const {
    PDIFF_CHECK(vit, "BAGEL: image editing needs the SigLIP tower: the folder has no vit_config.json");
    EditImage e;
    e.image = q.vae_transform(*q.image);  // interleave_inference resizes the input once with the VAE transform
    const Image vae_img = q.vae_transform(e.image), vit_img = q.vit_transform(e.image);  // each transform again
    const std::int64_t f = cfg.latent_downsample();
    e.h = vae_img.height / f, e.w = vae_img.width / f;
    PDIFF_CHECK(e.h >= 1 && e.w >= 1 && e.h <= cfg.max_latent_size && e.w <= cfg.max_latent_size, "BAGEL: the edited image (",
                vae_img.width, "x", vae_img.height, " after the VAE transform) needs 1..", cfg.max_latent_size,
                " latent tokens per side");
    const auto px = BagelImageTransform::to_tensor(vae_img);
    const auto moments = vae.encode_moments(px.view({1, 3, px.size(1), px.size(2)}), q.vae, rank.vae_patch);
    const std::int64_t Z = cfg.latent_channels, lh = moments.size(2), lw = moments.size(3);
    HostTensor eps;
    if (q.encode_noise) {
      PDIFF_CHECK(q.encode_noise->shape() == Shape({Z, lh, lw}), "BAGEL: encode_noise", q.encode_noise->shape(),
                  " must be (", Z, ", ", lh, ", ", lw, ")");
      eps = *q.encode_noise;
    } else {
      eps = HostTensor({Z, lh, lw});
      Philox{q.seed, std::uint64_t(1) << 40}.fill_normal(eps.span());  // apart from the initial noise's offsets
    }
    HostTensor zs({1, Z, lh, lw});
    for (std::int64_t c = 0; c < Z; ++c)
      for (std::int64_t i = 0; i < lh * lw; ++i) {
        const float mean = moments(c * lh * lw + i), logvar = moments((Z + c) * lh * lw + i);
        zs(c * lh * lw + i) = mean + std::exp(0.5f * logvar) * eps(c * lh * lw + i);  // DiagonalGaussian(sample=True)
      }
    e.latent_tokens = patchify(vae.to_latents(zs), e.h, e.w);
    const std::int64_t P = vit->cfg.patch_size;
    e.vit_rows = vit_img.height / P, e.vit_cols = vit_img.width / P;
    PDIFF_CHECK(vit_img.height % P == 0 && vit_img.width % P == 0, "BAGEL: the ViT transform gave ", vit_img.width, "x",
                vit_img.height, ", not a multiple of the patch size ", P);
    const auto vt = BagelImageTransform::to_tensor(vit_img);
    e.vit_patches = HostTensor({e.vit_rows * e.vit_cols, P * P * 3});
    for (std::int64_t r = 0; r < e.vit_rows; ++r)
      for (std::int64_t c = 0; c < e.vit_cols; ++c)
        for (std::int64_t a = 0; a < P; ++a)
          for (std::int64_t b = 0; b < P; ++b)
            for (std::int64_t ch = 0; ch < 3; ++ch)
              e.vit_patches((r * e.vit_cols + c) * P * P * 3 + (a * P + b) * 3 + ch) =
                  vt((ch * vit_img.height + r * P + a) * vit_img.width + c * P + b);
    return e;
  }

  // Appends an image's VAE block `<|vision_start|> latent tokens (t = 0) <|vision_end|>` (forward_cache_update_vae:
  // generation weights for the latents, full attention, one RoPE position).
  template <class R>
  void prefill_vae_image(R& rank, Context& ctx, const EditImage& e) const {
    image_block(rank, ctx, latent_inputs(rank, e.latent_tokens, 0.0f, e.h, e.w), MotMode::gen, true);
  }

  // Appends an image's ViT block `<|vision_start|> ViT tokens <|vision_end|>` (forward_cache_update_vit:
  // understanding weights, full attention, one RoPE position).
  template <class R>
  void prefill_vit_image(R& rank, Context& ctx, const EditImage& e) const {
    image_block(rank, ctx, vit->forward(rank, e.vit_patches, e.vit_rows, e.vit_cols).tokens, MotMode::und, true);
  }

  // The three branches' contexts this rank needs (branch b runs on CFG rank b % N), as interleave_inference
  // builds them. Text-to-image: gen = [text], cfg_text = [], cfg_img = [text]. Editing ([image, text]):
  // gen = [VAE block, ViT block, text], cfg_text = [VAE block, ViT block], cfg_img = [text].
  template <class R>
  void build_contexts(R& rank, const BagelRequest& q, const EditImage* e, Context (&ctx)[branches_max]) const {
    const int N_cfg = L::cfg, me = N_cfg > 1 ? rank.cfg.rank() : 0;
    auto owns = [&](int b) { return b % N_cfg == me; };
    const auto ids = text_ids(q);
    if (e) {
      if (owns(0) || owns(1)) {
        Context base;
        prefill_vae_image(rank, base, *e);
        prefill_vit_image(rank, base, *e);
        if (owns(1)) ctx[1] = base;
        if (owns(0)) {
          ctx[0] = base;
          prefill_text(rank, ctx[0], ids);
        }
      }
      if (owns(2)) prefill_text(rank, ctx[2], ids);
      return;
    }
    if (owns(0)) prefill_text(rank, ctx[0], ids);
    // cfg_img is the text alone: gen's context. On CFG<3> its own rank computes it (the same bits).
    if (N_cfg == 3 && owns(2)) prefill_text(rank, ctx[2], ids);
  }

  // What the denoising needs of a request: this rank's branches' contexts and the output size.
  struct Prepared {
    Context ctx[branches_max];  // 0 gen, 1 cfg_text, 2 cfg_img
    std::int64_t width = 0, height = 0;
    bool img_is_gen = true;  // text-to-image: cfg_img's context is gen's
  };

  // Checks the request, prepares an edit's image and prefills this rank's contexts.
  template <class R>
  Prepared prepare(R& rank, const BagelRequest& q) const {
    static_assert(L::cfg <= branches_max, "BAGEL has three guidance branches: CFG<N> needs N <= 3");
    PDIFF_CHECK(q.num_timesteps >= 2, "BAGEL: num_timesteps (", q.num_timesteps, ") must be >= 2 (n − 1 steps)");
    q.guidance.check();
    Prepared p;
    std::optional<EditImage> edit;
    if (q.image) edit = prepare_edit_image(rank, q);
    p.img_is_gen = !edit;
    p.width = edit ? edit->image.width : q.width, p.height = edit ? edit->image.height : q.height;
    check_size(p.width, p.height);
    build_contexts(rank, q, edit ? &*edit : nullptr, p.ctx);
    return p;
  }

  void check_size(std::int64_t width, std::int64_t height) const {
    const std::int64_t f = cfg.latent_downsample();
    PDIFF_CHECK(width > 0 && height > 0 && width % f == 0 && height % f == 0, "BAGEL: size ", width, "x", height,
                " must be positive multiples of ", f);
    PDIFF_CHECK(height / f <= cfg.max_latent_size && width / f <= cfg.max_latent_size, "BAGEL: size ", width, "x",
                height, " exceeds the model's ", cfg.max_latent_size * f, " pixels per side (max_latent_size ",
                cfg.max_latent_size, ")");
  }

  // Contexts that arrive from another stage (all KV heads, stage/kv_transfer.hpp) → this rank's branches,
  // its TP rank's heads.
  template <class R>
  void adopt_contexts(R& rank, const KvContext (&in)[branches_max], bool img_is_gen, Context (&ctx)[branches_max]) const {
    const int me = L::cfg > 1 ? rank.cfg.rank() : 0;
    const auto range = llm.layers.at(0).w[0].qkv.kv_range(L::coord(Axis::tp, rank.index));
    for (int b = 0; b < branches_max; ++b) {
      if (b % L::cfg != me) continue;
      const KvContext& k = in[b == 2 && img_is_gen ? 0 : b];
      PDIFF_CHECK(k.k.empty() || (k.k.size() == llm.layers.size() && k.v.size() == llm.layers.size()),
                  "BAGEL: a transferred context of ", k.k.size(), " layers for a model of ", llm.layers.size());
      Context c;
      c.length = k.length, c.rope = k.rope;
      for (std::size_t i = 0; i < k.k.size(); ++i) {
        PDIFF_CHECK(k.k[i].rank() == 3 && k.k[i].size(0) == k.length && k.k[i].size(1) == cfg.num_key_value_heads &&
                        k.k[i].size(2) == cfg.head_dim() && k.v[i].shape() == k.k[i].shape(),
                    "BAGEL: transferred layer ", i, " K", k.k[i].shape(), " must be (", k.length, ", ",
                    cfg.num_key_value_heads, ", ", cfg.head_dim(), ")");
        c.layers.push_back({shard_kv<C>(k.k[i], range), shard_kv<C>(k.v[i], range)});
      }
      ctx[b] = std::move(c);
    }
  }

  // Denoises from the prepared contexts and decodes: the image on every rank.
  template <class R>
  BagelResult denoise(R& rank, const BagelRequest& q, Prepared& p) const {
    using clock = std::chrono::steady_clock;
    auto secs = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };
    check_size(p.width, p.height);
    BagelResult out;
    out.width = p.width, out.height = p.height;
    const std::int64_t f = cfg.latent_downsample(), h = p.height / f, w = p.width / f, N = h * w;
    HostTensor x;
    if (q.noise) {
      PDIFF_CHECK(q.noise->shape() == Shape({N, cfg.patch_latent_dim()}), "BAGEL: noise", q.noise->shape(), " must be (",
                  N, ", ", cfg.patch_latent_dim(), ")");
      x = q.noise->clone();
    } else {
      x = HostTensor({N, cfg.patch_latent_dim()});
      Philox{q.seed, 0}.fill_normal(x.span());
    }
    const auto ts = bagel_timesteps(q.num_timesteps, q.timestep_shift);
    std::optional<ProgressBar> bar;
    if (q.progress) bar.emplace("denoise", q.num_timesteps - 1, rank.is_root());
    auto t0 = clock::now();
    constexpr int N_cfg = L::cfg;
    for (int i = 0; i + 1 < q.num_timesteps; ++i) {
      const float t = ts[std::size_t(i)];
      const auto g = q.guidance.at(t);
      // branches computed: gen; cfg_text when guided; cfg_img with image guidance when it differs from gen
      // (editing), or where a rank of its own runs it (CFG<3>); for text-to-image its velocity is gen's
      const bool img = g.img > 1.0f && (!p.img_is_gen || N_cfg == 3);
      const int need = g.text <= 1.0f ? 1 : img ? 3 : 2;
      const auto v = cfg_predict<L>(rank, std::max(need, N_cfg), [&](int b) {
        if (b >= need) return Prediction{HostTensor::zeros({N, cfg.patch_latent_dim()})};  // idle CFG rank
        return Prediction{velocity(rank, p.ctx[b], x, t, h, w)};
      });
      const HostTensor* vi = need == 3 ? &v[2][0] : need == 2 && p.img_is_gen ? &v[0][0] : nullptr;
      const auto vt = bagel_combine(v[0][0], need > 1 ? &v[1][0] : nullptr, vi, g, q.guidance);
      const float dt = ts[std::size_t(i)] - ts[std::size_t(i) + 1];
      for (std::int64_t k = 0; k < x.numel(); ++k) x(k) = x(k) - vt(k) * dt;
      if (bar) bar->update(i + 1);
      if (q.on_step) q.on_step(rank.index, i + 1, q.num_timesteps - 1);
    }
    out.denoise_s = secs(t0);
    out.latent = x;
    t0 = clock::now();
    auto img = vae.decode(vae.from_latents(unpatchify(x, h, w)), q.vae, rank.vae_patch);
    for (std::int64_t k = 0; k < img.numel(); ++k) img(k) = std::clamp(img(k) * 0.5f + 0.5f, 0.0f, 1.0f);
    out.image = std::move(img);
    out.decode_s = secs(t0);
    return out;
  }

  template <class R>
  BagelResult generate(R& rank, const BagelRequest& q) const {
    const auto t0 = std::chrono::steady_clock::now();
    auto p = prepare(rank, q);
    const double prefill = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto out = denoise(rank, q, p);
    out.prefill_s = prefill;
    return out;
  }
};

// Bagel<TP<2>, VaePatch<2>>: the pipeline on the layout of policies Ps, in any order.
template <class... Ps>
using Bagel = BagelPipeline<Layout<Ps...>>;

}  // namespace pdiff
