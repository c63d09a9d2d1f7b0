// Sequence parallel at any image size: FLUX.2 at 80x48 has 512 text + 15 image tokens = 527, which
// no sequence-parallel degree divides. The pipeline pads the joint sequence (masked keys, padded rows
// dropped), so every layout — Ulysses, Ring, USP, with TP and CFG — equals the serial run (dev and
// klein folders, text-to-image and with a reference image). Token-level cases: test_flux2_transformer.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/pipeline.hpp"
#include "pdiff/models/flux2/plan.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path golden = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny";

struct Images {
  std::vector<Tensor<float>> latents, image;
};

// 80x48, 2 steps, from Philox noise (seed 7), on every rank of L; with `reference`, image editing.
template <class L>
Images run(const fs::path& dir, float guidance, bool reference = false) {
  Images o;
  o.latents.resize(L::world_size);
  o.image = run_ranks<L>([&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, dir);
    Flux2Request q{.prompt = "a red fox in the snow", .width = 80, .height = 48, .steps = 2, .guidance = guidance,
                   .seed = 7, .progress = false};
    if (reference)
      q.images = {image_to_tensor(read_image((golden / "dev/pipeline/reference.png").string()))};
    auto r = pipe.generate(rank, q);
    o.latents[std::size_t(rank.index)] = r.latents;
    return r.image;
  });
  return o;
}

template <class L>
void check_equals_serial(const Images& serial, const fs::path& dir, float guidance, bool reference = false) {
  const auto o = run<L>(dir, guidance, reference);
  for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) {
    CAPTURE(i);
    CHECK(rel_err(o.latents[i], serial.latents[0]) < 1e-5);
    CHECK(rel_err(o.image[i], serial.image[0]) < 1e-5);
  }
}
}  // namespace

TEST_CASE("FLUX.2-dev at 80x48 (527 tokens) on Ulysses<2>, Ring<2>, USP and with TP equals serial") {
  const fs::path dev = golden / "dev/e2e";
  const auto serial = run<Layout<OnCpu>>(dev, 4.0f);
  REQUIRE(serial.latents[0].size(1) == 15);  // (80/16)·(48/16) image tokens
  check_equals_serial<Layout<Ulysses<2>, OnCpu>>(serial, dev, 4.0f);
  check_equals_serial<Layout<Ring<2>, OnCpu>>(serial, dev, 4.0f);
  check_equals_serial<Layout<Ulysses<2>, Ring<2>, OnCpu>>(serial, dev, 4.0f);
  check_equals_serial<Layout<TP<2>, Ring<2>, OnCpu>>(serial, dev, 4.0f);
  // with a reference image: 527 + its tokens, still padded
  const auto edit = run<Layout<OnCpu>>(dev, 4.0f, true);
  check_equals_serial<Layout<TP<2>, Ulysses<2>, OnCpu>>(edit, dev, 4.0f, true);
}

TEST_CASE("FLUX.2-klein at 80x48 with true CFG on CFG<2> x Ulysses<2> and CFG<2> x Ring<2> x TP<2> equals serial") {
  const fs::path klein = golden / "klein/e2e";
  const auto serial = run<Layout<OnCpu>>(klein, 3.0f);
  check_equals_serial<Layout<Ulysses<2>, CFG<2>, OnCpu>>(serial, klein, 3.0f);
  check_equals_serial<Layout<TP<2>, Ring<2>, CFG<2>, OnCpu>>(serial, klein, 3.0f);
}

TEST_CASE("the activation estimate counts the padded chunk") {
  const auto cfg = flux2_dev();
  // 527 tokens on 2 sequence ranks: 264 tokens each (one padding row), not 263.5
  const auto one = flux2_activation_bytes(cfg, 80, 48, 512, 1, 1, 2), two = flux2_activation_bytes(cfg, 80, 48, 512, 1, 2, 2);
  CHECK(one % 527 == 0);
  CHECK(two == one / 527 * 264);
  CHECK(flux2_activation_bytes(cfg, 80, 48, 512, 1, 8, 2) == one / 527 * 66);
}
