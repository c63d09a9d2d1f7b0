// pdiff/models/flux2/denoise.hpp — FLUX.2's denoising loop, with reference-image tokens and true CFG.
//
// | case                      | branches                 | per step                                          |
// |---------------------------|--------------------------|---------------------------------------------------|
// | dev (embedded guidance)   | [prompt]                 | one transformer call with guidance g              |
// | klein base, true CFG      | [prompt, negative]       | two calls, neg + s·(pos − neg); CFG<2> runs them on two rank groups |
// | image editing             | any                      | reference tokens (and their ids) appended after the noise tokens; only the noise tokens' prediction is used |
// Timesteps are passed as diffusers does (t/1000; the transformer multiplies by 1000).
#pragma once

#include <algorithm>
#include <optional>
#include <span>
#include <type_traits>

#include "pdiff/io/progress.hpp"
#include "pdiff/models/flux2/transformer.hpp"
#include "pdiff/parallel/cfg_parallel.hpp"
#include "pdiff/sched/denoise.hpp"
#include "pdiff/sched/guidance.hpp"

namespace pdiff {

// One guidance branch's text conditioning: embeds stay on the model's backend for every step.
template <class C>
struct Flux2Branch {
  typename C::tensor embeds;     // (B, Nt, joint)
  Tensor<float, OnCpu> txt_ids;  // (Nt, 4)
};

struct Flux2DenoiseArgs {
  std::optional<float> embedded_guidance;  // dev: 4.0 by default; klein: none
  float cfg_scale = 1.0f;                  // true CFG scale when there are two branches
  const Tensor<float, OnCpu>* ref_tokens = nullptr;  // (1, Nr, C) reference-image tokens
  const Tensor<float, OnCpu>* ref_ids = nullptr;     // (Nr, 4)
  ProgressBar* progress = nullptr;
};

// latents: (B, N, C) packed (B images of one size and settings, each branch's embeds (B, Nt, joint)), updated in place; latent_ids: (N, 4). The latents and the scheduler stay
// on the host in fp32 (as diffusers keeps the sampler in fp32); each step moves x to the model's
// backend and the prediction back — no copy at all on the CPU, ~N·C floats each way on CUDA.
template <class C, class R>
void flux2_denoise(R& rank, const Flux2Transformer<C>& model, const FlowMatchEulerScheduler& sched,
                   Tensor<float, OnCpu>& latents, const Tensor<float, OnCpu>& latent_ids,
                   std::span<const Flux2Branch<std::type_identity_t<C>>> branches, const Flux2DenoiseArgs& a) {
  using L = typename C::layout;
  PDIFF_CHECK(branches.size() == 1 || branches.size() == 2, "Flux2: ", branches.size(),
              " guidance branches; FLUX.2 uses 1 (embedded guidance) or 2 (true CFG)");
  PDIFF_CHECK((a.ref_tokens == nullptr) == (a.ref_ids == nullptr), "Flux2: reference tokens need their ids");
  const std::int64_t B = latents.size(0), n = latents.size(1);
  PDIFF_CHECK(B == 1 || a.ref_tokens == nullptr, "Flux2: reference images apply to one image per forward (batch ", B, ")");
  const Tensor<float, OnCpu> ids = a.ref_ids ? cat(latent_ids, *a.ref_ids, 0) : latent_ids;
  std::vector<float> g;  // one value per image
  if (a.embedded_guidance) g.assign(std::size_t(B), *a.embedded_guidance);
  std::vector<float> ts(static_cast<std::size_t>(B));
  denoise(
      sched, latents,
      [&](int i, float t, const Tensor<float, OnCpu>& x) {
        std::fill(ts.begin(), ts.end(), t / 1000.0f);
        const auto in = to_ctx<C>(a.ref_tokens ? cat(x, *a.ref_tokens, 1) : x);
        auto preds = cfg_predict<L>(rank, int(branches.size()), [&](int b) {
          const Flux2Branch<C>& br = branches[std::size_t(b)];
          return Prediction{to_host_f32(narrow(model.forward(rank, in, br.embeds, ts, g, ids, br.txt_ids), 1, 0, n))};
        });
        if (preds.size() == 1) return preds[0][0];
        const Tensor<float, OnCpu> pair[] = {preds[0][0], preds[1][0]};
        return ClassicCfg{a.cfg_scale}(pair, {i, t / 1000.0f});
      },
      a.progress);
}

}  // namespace pdiff
