// BagelPipeline on OnCuda (the MoT LLM, SigLIP tower, latent inputs / outputs and the AE on the GPU;
// the timestep MLP, latents and the guidance combine on the host) against the official code's goldens
// (tests/golden/bagel_tiny): text-to-image and editing, fp32 within 1e-4, bf16 within 5e-2; serial, TP<2>
// and CFG<2> on thread ranks sharing one GPU. Also CI's compile probe of the BAGEL OnCuda path. Skipped
// (77) without a GPU.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/bagel/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/bagel_tiny";

template <class L, class T>
std::vector<Tensor<float>> run(bool edit) {
  auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  const auto img = read_image((dir / "edit_input.png").string());
  const auto noise = g.read(edit ? "edit.init_noise" : "t2iA.init_noise"), eps = g.read("edit.encode_eps");
  BagelRequest q;
  q.num_timesteps = 4, q.progress = false, q.noise = &noise;
  if (edit) {
    q.prompt = "make it blue", q.image = &img, q.encode_noise = &eps, q.guidance.img_scale = 2.0f;
    q.vae_transform = {64, 32, 16}, q.vit_transform = {56, 28, 14};
  } else {
    q.prompt = "a red circle on a blue background", q.width = 64, q.height = 64;
  }
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    out[std::size_t(rank.index)] = BagelPipeline<L, T>::load(rank, dir).generate(rank, q).latent;
  });
  return out;
}
}  // namespace

TEST_CASE_TEMPLATE("BagelPipeline on CUDA equals the reference (fp32 1e-4; bf16 5e-2)", L, Layout<OnCuda>,
                   Layout<TP<2>, OnCuda>, Layout<CFG<2>, OnCuda>) {
  auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  for (bool edit : {false, true}) {
    CAPTURE(edit);
    const auto want = g.read(edit ? "edit.latent" : "t2iA.latent");
    for (auto& r : run<L, float>(edit)) CHECK(rel_err(r, want) < 1e-4);
    for (auto& r : run<L, bf16>(edit)) CHECK(rel_err(r, want) < 5e-2);
  }
}
