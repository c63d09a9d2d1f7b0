// Flux2Pipeline on OnCuda — text encoder and transformer on the GPU, the sampler in fp32 on the host —
// against diffusers' end-to-end goldens (tests/golden/flux2_tiny/dev/e2e): fp32 within 1e-4, bf16
// within 3e-2, serial, TP<2> and Ulysses<2> on thread ranks sharing one GPU; FLUX.2-klein's true CFG
// (tests/golden/flux2_tiny/klein/e2e: Qwen3 encoder, two guidance branches) on serial, CFG<2> and
// TP<2> x CFG<2>, every layout = serial within 1e-5. Also CI's compile probe of Flux2Pipeline load +
// generate on five OnCuda layouts. Skipped (77) without a GPU.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path e2e = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev/e2e";
const fs::path klein = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
const char* dev_prompt = "A red fox sitting in fresh snow, morning light, 35mm photo.";
const char* klein_prompt = "A red fox sitting in fresh snow, morning light, 35mm photo. Ünïcödé — «quoted» 123456!";

struct E2E {
  std::vector<Tensor<float>> embeds, latents, image;
};
// Text-to-image 128x96, 4 steps, through Flux2Pipeline<L, T> from the reference's initial latents, every
// rank's result (dev: guidance embedding 4; klein: true CFG at guidance 3).
template <class L, class T>
E2E run_pipeline(const fs::path& dir = e2e, const char* prompt = dev_prompt, float guidance = 4.0f) {
  auto g = SafeTensors::open((dir / "e2e_goldens.safetensors").string());
  const auto init = g.read("latents_init");
  E2E o;
  for (auto* v : {&o.embeds, &o.latents, &o.image}) v->resize(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    const auto pipe = Flux2Pipeline<L, T>::load(rank, dir);
    const auto i = std::size_t(rank.index);
    o.embeds[i] = to_host_f32(pipe.encode_prompt(rank, prompt));
    auto r = pipe.generate(rank, {.prompt = prompt, .width = 128, .height = 96, .steps = 4, .guidance = guidance,
                                  .latents = &init, .progress = false});
    o.latents[i] = r.latents, o.image[i] = r.image;
  });
  return o;
}
}  // namespace

TEST_CASE_TEMPLATE("Flux2Pipeline on CUDA equals diffusers (fp32 1e-4; bf16 3e-2)", L, Layout<OnCuda>,
                   Layout<TP<2>, OnCuda>, Layout<Ulysses<2>, OnCuda>) {
  auto g = SafeTensors::open((e2e / "e2e_goldens.safetensors").string());
  const auto f32 = run_pipeline<L, float>();
  const auto b16 = run_pipeline<L, bf16>();
  for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) {
    CAPTURE(i);
    CHECK(rel_err(f32.embeds[i], g.read("prompt_embeds")) < 1e-4);
    CHECK(rel_err(f32.latents[i], g.read("t2i_final_latents")) < 1e-4);
    CHECK(rel_err(f32.image[i], g.read("t2i_image")) < 1e-4);
    CHECK(rel_err(b16.embeds[i], g.read("prompt_embeds")) < 3e-2);
    CHECK(rel_err(b16.latents[i], g.read("t2i_final_latents")) < 3e-2);
    CHECK(rel_err(b16.image[i], g.read("t2i_image")) < 3e-2);
  }
}

TEST_CASE_TEMPLATE("Flux2Pipeline klein on CUDA: true CFG equals diffusers (fp32 1e-4; bf16 3e-2), layouts = serial", L,
                   Layout<OnCuda>, Layout<CFG<2>, OnCuda>, Layout<TP<2>, CFG<2>, OnCuda>) {
  auto g = SafeTensors::open((klein / "e2e_goldens.safetensors").string());
  const auto f32 = run_pipeline<L, float>(klein, klein_prompt, 3.0f);
  const auto b16 = run_pipeline<L, bf16>(klein, klein_prompt, 3.0f);
  const auto serial = run_pipeline<Layout<OnCuda>, float>(klein, klein_prompt, 3.0f);
  for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) {
    CAPTURE(i);
    CHECK(rel_err(f32.embeds[i], g.read("prompt_embeds")) < 1e-4);
    CHECK(rel_err(f32.latents[i], g.read("cfg_final_latents")) < 1e-4);
    CHECK(rel_err(f32.image[i], g.read("cfg_image")) < 1e-4);
    CHECK(rel_err(f32.latents[i], serial.latents[0]) < 1e-5);
    CHECK(rel_err(b16.latents[i], g.read("cfg_final_latents")) < 3e-2);
    CHECK(rel_err(b16.image[i], g.read("cfg_image")) < 3e-2);
  }
  // the negative branch matters: true CFG and one branch differ (by ~0.8% on this tiny model)
  CHECK(rel_err(f32.latents[0], g.read("nocfg_final_latents")) > 1e-3);
}
