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
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pdiff/comm/self_comm.hpp"
#include "pdiff/core/philox.hpp"
#include "pdiff/io/progress.hpp"
#include "pdiff/io/tokenizer.hpp"
#include "pdiff/layers/replicated.hpp"
#include "pdiff/layers/timestep.hpp"
#include "pdiff/models/autoencoder_kl/autoencoder_kl.hpp"
#include "pdiff/models/autoencoder_kl/bfl_names.hpp"
#include "pdiff/models/bagel/llm.hpp"
#include "pdiff/models/bagel/sampler.hpp"
#include "pdiff/parallel/cfg_parallel.hpp"

namespace pdiff {

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
};

struct BagelResult {
  Tensor<float, OnCpu> image;   // (1, 3, H, W) in [0, 1]
  Tensor<float, OnCpu> latent;  // (h·w, 4·z) final packed latents
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
  Replicated<HostCtx> time_mlp0, time_mlp2, vae2llm, llm2vae;
  HostTensor latent_pos_embed;  // (max_latent_size², hidden)
  AutoencoderKL vae;
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
    auto linear = [&](Replicated<HostCtx>& l, const std::string& n, std::int64_t in, std::int64_t out) {
      l = Replicated<HostCtx>(in, out, true);
      const auto b = ck.read(n + ".bias");
      l.load(ck.read(n + ".weight"), &b);
    };
    linear(p.time_mlp0, "time_embedder.mlp.0", 256, H);
    linear(p.time_mlp2, "time_embedder.mlp.2", H, H);
    linear(p.vae2llm, "vae2llm", PD, H);
    linear(p.llm2vae, "llm2vae", H, PD);
    p.latent_pos_embed = ck.read("latent_pos_embed.pos_embed");
    p.vae = AutoencoderKL::load(ck, ae);
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

  // Latent tokens' LLM inputs (N, H): vae2llm(x) + time_embed(t) + latent_pos_embed[i·max + j].
  HostTensor latent_inputs(const HostTensor& x, float t, std::int64_t h, std::int64_t w) const {
    auto y = host_linear(vae2llm, x);
    const auto te = time_embed(t);
    const std::int64_t H = cfg.hidden_size;
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) {
        float* row = y.data() + (i * w + j) * H;
        const float* pe = latent_pos_embed.data() + (i * cfg.max_latent_size + j) * H;
        for (std::int64_t c = 0; c < H; ++c) row[c] = row[c] + te(c) + pe[c];
      }
    return y;
  }

  // One branch's velocity (N, 4·z) for latents x at t against its context (_forward_flow, no update).
  template <class R>
  HostTensor velocity(R& rank, Context& ctx, const HostTensor& x, float t, std::int64_t h, std::int64_t w) const {
    const std::int64_t N = h * w, H = cfg.hidden_size;
    PDIFF_CHECK(x.rank() == 2 && x.size(0) == N && x.size(1) == cfg.patch_latent_dim(), "BAGEL: latents", x.shape(),
                " must be (", N, ", ", cfg.patch_latent_dim(), ")");
    const std::int64_t marks[] = {start_of_image, end_of_image};
    const auto m = llm.embed_tokens(rank, marks);
    const auto lat = latent_inputs(x, t, h, w);
    HostTensor seq({1, N + 2, H});
    std::copy_n(m.data(), H, seq.data());
    std::copy_n(lat.data(), N * H, seq.data() + H);
    std::copy_n(m.data() + H, H, seq.data() + (N + 1) * H);
    const MotRun runs[] = {{MotMode::und, 0, 1}, {MotMode::gen, 1, N}, {MotMode::und, N + 1, 1}};
    const std::vector<std::int64_t> pos(std::size_t(N + 2), ctx.rope);
    const auto hidden = llm.forward(rank, seq, runs, pos, false, ctx, false);
    const auto g = to_host_f32(llm.norm[int(MotMode::gen)](narrow(hidden, 1, 1, N)));
    return host_linear(llm2vae, g.view({N, H}));
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

  template <class R>
  BagelResult generate(R& rank, const BagelRequest& q) const {
    using clock = std::chrono::steady_clock;
    auto secs = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };
    const std::int64_t f = cfg.latent_downsample();
    PDIFF_CHECK(q.width > 0 && q.height > 0 && q.width % f == 0 && q.height % f == 0, "BAGEL: size ", q.width, "x",
                q.height, " must be positive multiples of ", f);
    const std::int64_t h = q.height / f, w = q.width / f, N = h * w;
    PDIFF_CHECK(h <= cfg.max_latent_size && w <= cfg.max_latent_size, "BAGEL: size ", q.width, "x", q.height,
                " exceeds the model's ", cfg.max_latent_size * f, " pixels per side (max_latent_size ",
                cfg.max_latent_size, ")");
    PDIFF_CHECK(q.num_timesteps >= 2, "BAGEL: num_timesteps (", q.num_timesteps, ") must be >= 2 (n − 1 steps)");
    q.guidance.check();
    BagelResult out;
    auto t0 = clock::now();
    // Contexts: 0 gen, 1 cfg_text (empty for text-to-image), 2 cfg_img (= gen for text-to-image).
    const auto ids = text_ids(q);
    Context ctx[branches_max];
    const int N_cfg = L::cfg, me = N_cfg > 1 ? rank.cfg.rank() : 0;
    static_assert(L::cfg <= branches_max, "BAGEL has three guidance branches: CFG<N> needs N <= 3");
    if (0 % N_cfg == me) prefill_text(rank, ctx[0], ids);
    // cfg_img is the text alone: gen's context. On CFG<3> its own rank computes it (the same bits).
    if (N_cfg == 3 && 2 % N_cfg == me) prefill_text(rank, ctx[2], ids);
    out.prefill_s = secs(t0);

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
    t0 = clock::now();
    for (int i = 0; i + 1 < q.num_timesteps; ++i) {
      const float t = ts[std::size_t(i)];
      const auto g = q.guidance.at(t);
      // branches computed: gen; cfg_text when guided; cfg_img only where a rank of its own runs it (CFG<3>):
      // for text-to-image its velocity is gen's
      const int need = g.text <= 1.0f ? 1 : N_cfg == 3 && g.img > 1.0f ? 3 : 2;
      const auto v = cfg_predict<L>(rank, std::max(need, N_cfg), [&](int b) {
        if (b >= need) return Prediction{HostTensor::zeros({N, cfg.patch_latent_dim()})};  // idle CFG rank
        return Prediction{velocity(rank, ctx[b], x, t, h, w)};
      });
      const HostTensor* vi = need == 3 ? &v[2][0] : need == 2 ? &v[0][0] : nullptr;
      const auto vt = bagel_combine(v[0][0], need > 1 ? &v[1][0] : nullptr, vi, g, q.guidance);
      const float dt = ts[std::size_t(i)] - ts[std::size_t(i) + 1];
      for (std::int64_t k = 0; k < x.numel(); ++k) x(k) = x(k) - vt(k) * dt;
      if (bar) bar->update(i + 1);
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
};

// Bagel<TP<2>, VaePatch<2>>: the pipeline on the layout of policies Ps, in any order.
template <class... Ps>
using Bagel = BagelPipeline<Layout<Ps...>>;

}  // namespace pdiff
