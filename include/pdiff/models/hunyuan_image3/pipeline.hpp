// pdiff/models/hunyuan_image3/pipeline.hpp — HunyuanImage3Pipeline<L, T>: text-to-image from a
// HunyuanImage-3.0 folder (config.json, model*.safetensors [+ index], tokenizer.json), on every layout
// of L: TP, Ulysses/Ring, CFG<2>, EP<N>. Official code: hunyuan.py generate_image,
// tokenizer_wrapper.py, hunyuan_image_3_pipeline.py (SPEC.md in tests/golden/hunyuan_image3_tiny).
//
// | stage    | what                                                                                   |
// |----------|----------------------------------------------------------------------------------------|
// | size     | (width, height) snapped to the nearest of ResolutionGroup(image_base_size)'s 33 ratios; h, w = size / 16 |
// | tokens   | `<|startoftext|> prompt <boi> <img_size_base> <img_ratio_r> <timestep> <img>×h·w <eoi>` (the released "pretrain" template); uncond: prompt → `<cfg>` |
// | denoise  | Philox(seed) noise (1, C, h, w) or the caller's latents; flow-match Euler, CFG (sampler.hpp) |
// | decode   | the 3-D VAE decoder's last frame on the layout's backend, clamp(x/2 + 0.5, 0, 1) (vae.hpp); whole, or patch over VaePatch |
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "pdiff/core/philox.hpp"
#include "pdiff/io/checkpoint.hpp"
#include "pdiff/io/progress.hpp"
#include "pdiff/io/tokenizer.hpp"
#include "pdiff/core/rank_note.hpp"
#include "pdiff/models/hunyuan_image3/plan.hpp"
#include "pdiff/models/hunyuan_image3/sampler.hpp"
#include "pdiff/models/hunyuan_image3/vae.hpp"

namespace pdiff {

// The reference's ResolutionGroup(base): base×base, then steps of base/16 toward 2:1 and 1:2, sorted by h/w.
struct HunyuanResolutions {
  std::vector<std::pair<std::int64_t, std::int64_t>> hw;  // (height, width), sorted by ratio

  explicit HunyuanResolutions(std::int64_t base) {
    const std::int64_t step = base / 16, lo = base / 2, hi = base * 2;
    hw.push_back({base, base});
    for (std::int64_t h = base, w = base; !(h >= hi && w <= lo);) {
      h = std::min(h + step, hi), w = std::max(w - step, lo);
      hw.push_back({h, w});
    }
    for (std::int64_t h = base, w = base; !(h <= lo && w >= hi);) {
      h = std::max(h - step, lo), w = std::min(w + step, hi);
      hw.push_back({h, w});
    }
    std::stable_sort(hw.begin(), hw.end(), [](auto a, auto b) { return double(a.first) / double(a.second) < double(b.first) / double(b.second); });
  }
  // The index of the ratio nearest to height/width (the first on ties, as numpy's argmin).
  std::size_t nearest(std::int64_t width, std::int64_t height) const {
    const double r = double(height) / double(width);
    std::size_t best = 0;
    for (std::size_t i = 1; i < hw.size(); ++i)
      if (std::abs(double(hw[i].first) / double(hw[i].second) - r) <
          std::abs(double(hw[best].first) / double(hw[best].second) - r))
        best = i;
    return best;
  }
};

struct HunyuanRequest {
  std::string prompt;
  std::vector<std::int32_t> prompt_ids;  // instead of tokenizing `prompt` (tokens between <bos> and <boi>)
  std::int64_t width = 1024, height = 1024;  // snapped to the nearest supported ratio
  int steps = 50;
  float guidance = 5.0f;    // > 1: CFG with the <cfg> branch
  float flow_shift = 3.0f;
  std::uint64_t seed = 0;
  const Tensor<float, OnCpu>* latents = nullptr;  // (1, C, h, w) instead of Philox noise
  VaeRunOptions vae;     // whole (default) or patch over the layout's VaePatch ranks
  bool kv_cache = true;  // keep the prompt's K/V from the first step (false: recompute it every step)
  bool progress = true;
};

struct HunyuanResult {
  Tensor<float, OnCpu> image;    // (1, 3, H, W) in [0, 1]
  Tensor<float, OnCpu> latents;  // (1, C, h, w) final latents
  std::int64_t width = 0, height = 0;
  double denoise_s = 0, decode_s = 0;
};

template <class L, class T = default_value_t<typename L::backend>>
class HunyuanImage3Pipeline {
 public:
  using layout = L;
  using C = Ctx<L, T>;
  HunyuanImage3Config cfg;
  HunyuanImage3Transformer<C> model;
  hunyuan_image3::BasicVaeDecoder3d<Ctx<Layout<typename L::backend>, T>> vae;  // on the layout's backend, per rank
  Tokenizer tokenizer;
  std::int64_t image_base_size = 1024;

  template <class R>
  static HunyuanImage3Pipeline load(R& rank, const std::filesystem::path& dir) {
    PDIFF_CHECK(std::filesystem::is_regular_file(dir / "config.json"), "HunyuanImage-3.0: '", dir.string(),
                "' has no config.json (give the model folder)");
    const auto j = JsonConfig::load(dir / "config.json");
    PDIFF_CHECK(j.has("vae"), "HunyuanImage-3.0: config.json has no 'vae' section");
    HunyuanImage3Pipeline p;
    p.cfg = HunyuanImage3Config::from(j, std::size_t(j.get<std::int64_t>("num_hidden_layers")));
    p.image_base_size = j.get_or<std::int64_t>("image_base_size", 1024);
    const auto ck = Checkpoint::open(dir);
    p.model = HunyuanImage3Transformer<C>::load(ck, p.cfg, rank);
    p.vae = decltype(p.vae)::load(ck, j.sub("vae"));
    PDIFF_CHECK(std::filesystem::is_regular_file(dir / "tokenizer.json"), "HunyuanImage-3.0: '", dir.string(),
                "' has no tokenizer.json");
    p.tokenizer = Tokenizer::load(dir);
    return p;
  }

  // The id of a special token, or a clear error naming it.
  std::int32_t special(const std::string& name) const {
    const auto id = tokenizer.token_to_id(name);
    PDIFF_CHECK(id >= 0, "HunyuanImage-3.0: the tokenizer has no '", name, "' token");
    return id;
  }

  // The conditional sequence for a prompt at (width, height) after snapping, and the prompt's range.
  struct Prepared {
    HunyuanSequence cond, uncond;
    std::int64_t width = 0, height = 0;
  };
  Prepared prepare(const HunyuanRequest& q) const {
    PDIFF_CHECK(q.width > 0 && q.height > 0 && q.width <= 8192 && q.height <= 8192, "HunyuanImage-3.0: size ",
                q.width, "x", q.height, " must be in [1, 8192]");
    const HunyuanResolutions group(image_base_size);
    const auto r = group.nearest(q.width, q.height);
    Prepared p;
    p.height = group.hw[r].first, p.width = group.hw[r].second;
    auto& s = p.cond;
    s.h = p.height / cfg.downsample, s.w = p.width / cfg.downsample;
    const auto prompt = q.prompt_ids.empty() ? tokenizer.encode(q.prompt, false) : q.prompt_ids;
    s.ids.push_back(special("<|startoftext|>"));
    s.ids.insert(s.ids.end(), prompt.begin(), prompt.end());
    s.ids.push_back(special("<boi>"));
    s.ids.push_back(special("<img_size_" + std::to_string(image_base_size) + ">"));
    s.ids.push_back(special("<img_ratio_" + std::to_string(r) + ">"));
    s.timestep_index = s.size();
    s.ids.push_back(special("<timestep>"));
    s.image_begin = s.size();
    s.ids.insert(s.ids.end(), std::size_t(s.h * s.w), special("<img>"));
    s.ids.push_back(special("<eoi>"));
    p.uncond = hunyuan_uncond(s, 1, 1 + std::int64_t(prompt.size()), special("<cfg>"));
    return p;
  }

  template <class R>
  HunyuanResult generate(R& rank, const HunyuanRequest& q) const {
    using clock = std::chrono::steady_clock;
    auto secs = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };
    const auto p = prepare(q);
    // what an out-of-memory error on this rank names as predicted: the weights it holds now and the
    // planner's activation estimate for one step (plan.hpp)
    const int branches = q.guidance > 1.0f ? 2 / L::cfg : 1;
    const PredictedBytes predicted(
        std::int64_t(detail::thread_byte_counter<typename L::backend>().live.load()) +
            hunyuan_image3_activation_bytes(cfg, p.cond.size(), p.cond.timestep_index, L::tp, L::ep,
                                            L::ulysses * L::ring, branches, int(sizeof(T))),
        detail::cat("the weights it held when generation began and the activations of a ", p.width, "x", p.height,
                    " image"));
    HunyuanResult out;
    out.width = p.width, out.height = p.height;
    Tensor<float, OnCpu> x;
    if (q.latents) {
      PDIFF_CHECK(q.latents->shape() == Shape({1, cfg.latent_channels, p.cond.h, p.cond.w}), "HunyuanImage-3.0: latents",
                  q.latents->shape(), " must be (1, ", cfg.latent_channels, ", ", p.cond.h, ", ", p.cond.w, ")");
      x = q.latents->clone();
    } else {
      x = Tensor<float, OnCpu>({1, cfg.latent_channels, p.cond.h, p.cond.w});
      Philox{q.seed, 0}.fill_normal(x.span());
    }
    std::optional<ProgressBar> bar;
    if (q.progress) bar.emplace("denoise", q.steps, rank.is_root());
    auto t0 = clock::now();
    HunyuanSampling o{q.steps, q.guidance, q.flow_shift, [&](int done, int) {
                        if (bar) bar->update(done);
                      }, q.kv_cache};
    out.latents = hunyuan_denoise(rank, model, p.cond, p.uncond, std::move(x), o);
    out.denoise_s = secs(t0);
    t0 = clock::now();
    out.image = vae.decode(out.latents, q.vae, rank.vae_patch);
    out.decode_s = secs(t0);
    return out;
  }
};

// HunyuanImage3<TP<4>, CFG<2>, EP<8>>: the pipeline on the layout of policies Ps, in any order.
template <class... Ps>
using HunyuanImage3 = HunyuanImage3Pipeline<Layout<Ps...>>;

}  // namespace pdiff
