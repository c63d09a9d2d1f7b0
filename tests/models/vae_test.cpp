// The VAEs against diffusers (tests/golden, made by tools/make_vae_goldens.py): FLUX.2's
// AutoencoderKLFlux2 and FLUX.1's AutoencoderKL (BAGEL's), whole and tiled, encode and decode, and
// the decoded image of the FLUX.2 text-to-image golden run.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include <set>

#include "pdiff/models/autoencoder_kl/params.hpp"
#include "pdiff/models/flux2/vae.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path golden = fs::path(PDIFF_SOURCE_DIR) / "tests/golden";
const fs::path flux2_dir = golden / "flux2_tiny/dev/pipeline";
const fs::path flux1_dir = golden / "flux1_vae_tiny";

void check_against(const AutoencoderKL& vae, const SafeTensors& g) {
  const auto z = g.read("z"), img = g.read("image");
  CHECK(rel_err(vae.decode(z), g.read("decoded")) < 1e-4);
  CHECK(rel_err(vae.encode(img), g.read("encoded")) < 1e-4);
  CHECK(rel_err(vae.decode(z, VaeRunOptions::tiled(8)), g.read("decoded_tiled")) < 1e-4);
  CHECK(rel_err(vae.encode(img, VaeRunOptions::tiled(8)), g.read("encoded_tiled")) < 1e-4);
  // tiling changes the result (each tile sees its own GroupNorm statistics): the goldens differ
  CHECK(rel_err(g.read("decoded_tiled"), g.read("decoded")) > 1e-3);
}
}  // namespace

TEST_CASE("AutoencoderKLFlux2 equals diffusers: decode, encode, tiled, pipeline image latents") {
  auto g = SafeTensors::open((flux2_dir / "vae_goldens.safetensors").string());
  auto vae = Flux2Vae::load(flux2_dir / "vae");
  CHECK(vae.kl.config.is_flux2());
  CHECK(vae.kl.factor() == 8);
  check_against(vae.kl, g);
  CHECK(rel_err(vae.image_latents(g.read("image")), g.read("image_latents")) < 1e-4);
}

TEST_CASE("FLUX.1 AutoencoderKL (BAGEL's) equals diffusers; scaling and shift round trip") {
  auto g = SafeTensors::open((flux1_dir / "vae_goldens.safetensors").string());
  auto vae = AutoencoderKL::load(flux1_dir / "vae");
  CHECK_FALSE(vae.quant_conv.has_value());
  CHECK(vae.config.scaling_factor == doctest::Approx(0.3611));
  CHECK(vae.config.shift_factor == doctest::Approx(0.1159));
  check_against(vae, g);
  const auto m = g.read("encoded");
  const auto lat = vae.to_latents(m);
  CHECK(lat(0) == doctest::Approx((m(0) - 0.1159) * 0.3611).epsilon(1e-5));
  CHECK(rel_err(vae.from_latents(lat), m) < 1e-6);
}

TEST_CASE("FLUX.2 text-to-image: the final latents decode to diffusers' image") {
  auto g = SafeTensors::open((flux2_dir / "goldens.safetensors").string());
  auto vae = Flux2Vae::load(flux2_dir / "vae");
  const auto init = g.read("latents_init");
  auto img = Flux2Vae::to_unit(vae.decode_tokens(g.read("t2i_final_latents"), init.size(2), init.size(3)));
  CHECK(rel_err(img, g.read("t2i_image")) < 1e-4);
}

TEST_CASE("VAE: bad input is a clear error") {
  auto vae = Flux2Vae::load(flux2_dir / "vae");
  CHECK_THROWS_WITH_AS(vae.kl.encode(Tensor<float>::zeros({1, 3, 60, 64})),
                       doctest::Contains("image size 60x64 must be a multiple of the VAE factor 8"), Error);
  CHECK_THROWS_WITH_AS(vae.kl.decode(Tensor<float>::zeros({1, 5, 4, 4})),
                       doctest::Contains("must be (B, 4, h, w)"), Error);
  CHECK_THROWS_WITH_AS(vae.image_latents(Tensor<float>::zeros({1, 3, 24, 32})),
                       doctest::Contains("multiples of 16"), Error);
  CHECK_THROWS_WITH_AS(Flux2Vae::load(flux1_dir / "vae"), doctest::Contains("FLUX.2 needs AutoencoderKLFlux2"), Error);
  auto bad = JsonConfig::parse(R"({"_class_name": "AutoencoderKL", "up_block_types": ["AttnUpDecoderBlock2D"]})", "vae/config.json");
  CHECK_THROWS_WITH_AS(AutoencoderKLConfig::from(bad), doctest::Contains("'AttnUpDecoderBlock2D' is not supported"), Error);
}

TEST_CASE("autoencoder_kl_params lists exactly the reference checkpoints' parameters") {
  for (const auto& dir : {flux2_dir / "vae", flux1_dir / "vae"}) {
    CAPTURE(dir.string());
    auto ck = Checkpoint::open(dir);
    const auto params = autoencoder_kl_params(AutoencoderKLConfig::load(dir));
    std::set<std::string> listed;
    for (auto& [name, shape] : params) {
      CAPTURE(name);
      listed.insert(name);
      REQUIRE(ck.contains(name));
      CHECK(ck.shape(name) == shape);
    }
    for (auto& n : ck.names())
      if (n != "bn.num_batches_tracked") CHECK_MESSAGE(listed.count(n) == 1, n);
  }
  // the real FLUX.2 VAE: 84M parameters (diffusers' AutoencoderKLFlux2 default config)
  AutoencoderKLConfig real;
  real.class_name = "AutoencoderKLFlux2", real.latent_channels = 32, real.patch_size = {2, 2};
  const auto n = autoencoder_kl_param_count(real);
  MESSAGE("FLUX.2 VAE parameters: ", n);
  CHECK(n > 80'000'000);
  CHECK(n < 90'000'000);
}
