// FLUX.2 denoising against diffusers' Flux2Pipeline: the scheduler's sigmas, the transformer output
// at the first step and the final latents of a 4-step text-to-image run from the same initial
// latents (tests/golden/flux2_tiny/dev/pipeline, made by tools/make_flux2_goldens.py).
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/latents.hpp"
#include "pdiff/models/flux2/transformer.hpp"
#include "pdiff/sched/denoise.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path root = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev";
}

TEST_CASE("FlowMatchEulerScheduler: FLUX.2's dynamic shifting equals diffusers") {
  auto g = SafeTensors::open((root / "pipeline/goldens.safetensors").string());
  auto sched = FlowMatchEulerScheduler::load(root / "pipeline/scheduler");
  CHECK(sched.use_dynamic_shifting);
  sched.set_timesteps(4, flux2_empirical_mu(48, 4));
  auto want = g.read("t2i_sigmas");
  REQUIRE(want.numel() == 5);
  for (int i = 0; i < 5; ++i) CHECK(sched.sigmas[std::size_t(i)] == doctest::Approx(want(i)).epsilon(1e-6));
  CHECK(flux2_empirical_mu(5000, 50) == doctest::Approx(0.00016927 * 5000 + 0.45666666));
  CHECK_THROWS_WITH_AS(sched.set_timesteps(0), doctest::Contains("num_inference_steps (0) must be >= 1"), Error);
  auto bad = JsonConfig::parse(R"({"use_karras_sigmas": true})", "scheduler_config.json");
  CHECK_THROWS_WITH_AS(FlowMatchEulerScheduler::from(bad), doctest::Contains("use_karras_sigmas is not supported"), Error);
}

TEST_CASE_TEMPLATE("text-to-image denoising equals diffusers on every layout", L, Layout<OnCpu>, Layout<TP<2>, OnCpu>,
                   Layout<TP<2>, Ulysses<2>, OnCpu>, Layout<Ring<2>, OnCpu>) {
  auto g = SafeTensors::open((root / "pipeline/goldens.safetensors").string());
  auto ck = Checkpoint::open(root / "transformer");
  auto cfg = Flux2Config::load(root / "transformer");
  auto prompt = g.read("prompt_embeds"), init = g.read("latents_init");
  const std::int64_t h = init.size(2), w = init.size(3);
  std::vector<Tensor<float>> firsts(L::world_size);
  auto finals = run_ranks<L>([&](auto& rank) {
    auto model = Flux2Transformer<Ctx<L>>::load(ck, cfg, rank.coords.tp);
    auto sched = FlowMatchEulerScheduler::load(root / "pipeline/scheduler");
    sched.set_timesteps(4, flux2_empirical_mu(h * w, 4));
    auto x = flux2::pack(init);
    const auto img_ids = flux2::latent_ids(h, w), txt_ids = flux2::text_ids(prompt.size(1));
    const float guidance[] = {4.0f};
    denoise(sched, x, [&](int i, float t, const Tensor<float>& lat) {
      const float ts[] = {t / 1000.0f};
      auto v = model.forward(rank, lat, prompt, ts, guidance, img_ids, txt_ids);
      if (i == 0) firsts[std::size_t(rank.index)] = v.clone();
      return v;
    });
    return x;
  });
  for (int r = 0; r < L::world_size; ++r) {
    CHECK(rel_err(firsts[std::size_t(r)], g.read("t2i_first_output")) < 1e-4);
    CHECK(rel_err(finals[std::size_t(r)], g.read("t2i_final_latents")) < 1e-4);
    CHECK(rel_err(finals[std::size_t(r)], finals[0]) < 1e-5);
  }
}
