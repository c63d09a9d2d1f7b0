// FLUX.2 klein base with true CFG against diffusers' Flux2KleinPipeline, serial and CFG<2>; CFG<2>
// bit-identical to serial and TP<2> x CFG<2> bit-identical to TP<2>.
#include <doctest/doctest.h>

#include <cstring>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/denoise.hpp"
#include "pdiff/models/flux2/latents.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path root = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny";

template <class L>
std::vector<Tensor<float>> klein_cfg() {
  auto g = SafeTensors::open((root / "klein/cfg_goldens.safetensors").string());
  auto ck = Checkpoint::open(root / "klein/transformer");
  auto cfg = Flux2Config::load(root / "klein/transformer");
  auto init = g.read("latents_init");
  const std::int64_t h = init.size(2), w = init.size(3);
  const Flux2Branch<Ctx<L>> branches[] = {{g.read("prompt_embeds"), flux2::text_ids(12)},
                                          {g.read("negative_prompt_embeds"), flux2::text_ids(12)}};
  return run_ranks<L>([&](auto& rank) {
    auto model = Flux2Transformer<Ctx<L>>::load(ck, cfg, rank.coords.tp);
    auto sched = FlowMatchEulerScheduler::load(root / "dev/pipeline/scheduler");
    sched.set_timesteps(4, flux2_empirical_mu(h * w, 4));
    auto x = flux2::pack(init);
    flux2_denoise(rank, model, sched, x, flux2::latent_ids(h, w), branches, {.cfg_scale = 3.0f});
    return x;
  });
}
bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}
}  // namespace

TEST_CASE("klein true CFG: serial equals diffusers, CFG<2> is bit-identical to serial") {
  auto want = SafeTensors::open((root / "klein/cfg_goldens.safetensors").string()).read("final_latents");
  auto serial = klein_cfg<Layout<OnCpu>>()[0];
  CHECK(rel_err(serial, want) < 1e-4);
  for (auto& y : klein_cfg<Layout<CFG<2>, OnCpu>>()) CHECK(same_bits(y, serial));
}

TEST_CASE("TP<2> x CFG<2> is bit-identical to TP<2>") {
  auto tp = klein_cfg<Layout<TP<2>, OnCpu>>()[0];
  for (auto& y : klein_cfg<Layout<TP<2>, CFG<2>, OnCpu>>()) CHECK(same_bits(y, tp));
}
