// VaePatch<N>: VAE decode and encode spread over the ranks of a VaePatch group. Tiled mode equals
// serial tiled decode/encode (relative 1e-6, in fact bit-identical) for N = 2, 3, 4, odd sizes, and
// composed with TP and CFG meshes; patch mode stays within a measured distance of the untiled decode.
#include <doctest/doctest.h>

#include <cstring>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/vae.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path golden = fs::path(PDIFF_SOURCE_DIR) / "tests/golden";

const AutoencoderKL& vae() {
  static const AutoencoderKL v = Flux2Vae::load(golden / "flux2_tiny/dev/pipeline/vae").kl;
  return v;
}
bool identical(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}
}  // namespace

TEST_CASE_TEMPLATE("VaePatch tiled decode and encode equal serial tiled on every rank", L,
                   Layout<TP<2>, VaePatch<2>, OnCpu>, Layout<DP<3>, VaePatch<3>, OnCpu>,
                   Layout<TP<2>, CFG<2>, VaePatch<4>, OnCpu>, Layout<TP<2>, CFG<2>, VaePatch<2>, OnCpu>) {
  for (auto [h, w] : {std::pair<std::int64_t, std::int64_t>{20, 26}, {13, 17}}) {
    CAPTURE(h);
    CAPTURE(w);
    const auto z = random({1, 4, h, w}, 21 + std::uint64_t(h));
    const auto img = random({1, 3, 8 * h, 8 * w}, 5 + std::uint64_t(w), 0.5f);
    const auto serial = vae().decode(z, VaeRunOptions::tiled(8));
    const auto serial_enc = vae().encode(img, VaeRunOptions::tiled(8));
    std::vector<Tensor<float>> enc(L::world_size);
    auto dec = run_ranks<L>([&](auto& rank) {
      enc[std::size_t(rank.index)] = vae().encode(img, VaeRunOptions::tiled(8), rank.vae_patch);
      return vae().decode(z, VaeRunOptions::tiled(8), rank.vae_patch);
    });
    for (int r = 0; r < L::world_size; ++r) {
      CHECK(rel_err(dec[std::size_t(r)], serial) < 1e-6);
      CHECK(rel_err(enc[std::size_t(r)], serial_enc) < 1e-6);
      CHECK(identical(dec[std::size_t(r)], serial));
      CHECK(identical(enc[std::size_t(r)], serial_enc));
    }
  }
}

TEST_CASE("VaePatch: tiles go to the least-loaded rank, largest first") {
  const auto t = VaeTiling::tiled(20, 26, 8, 8, 1);
  CHECK(t.rows == 4);
  CHECK(t.cols == 5);
  const auto owner = t.assign(3);
  std::vector<std::int64_t> load(3, 0);
  for (std::size_t k = 0; k < owner.size(); ++k) load[std::size_t(owner[k])] += t.regions[k].h * t.regions[k].w;
  const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
  CHECK(*hi - *lo <= 64);  // within one full tile
  CHECK(owner[0] == 0);    // the first full tile goes to rank 0
}

TEST_CASE("VaePatch patch mode: haloed blocks approach the untiled decode as the halo grows") {
  // Blocks normalise with their own GroupNorm statistics and the mid-block attention sees only its
  // block, so patch mode is not exact. With this tiny random VAE on a 16x24 latent the relative
  // error to the untiled decode was 0.58 / 0.44 / 0.27 at halo 1 / 2 / 4 (2x2 blocks of 8x12); a
  // halo that covers the image makes every block the whole image, hence exact.
  const auto z = random({1, 4, 16, 24}, 77);
  const auto whole = vae().decode(z);
  const std::int64_t halos[4] = {1, 2, 4, 24};
  double err[4] = {};
  for (int k = 0; k < 4; ++k) {
    auto out = run_ranks<Layout<TP<4>, VaePatch<4>, OnCpu>>(
        [&](auto& rank) { return vae().decode(z, VaeRunOptions::patch(halos[k]), rank.vae_patch); });
    for (auto& o : out) CHECK(identical(o, out[0]));
    err[k] = rel_err(out[0], whole);
  }
  MESSAGE("patch mode (2x2 blocks) vs untiled decode, relative error at halo 1/2/4/24 latent px: ", err[0], " ",
          err[1], " ", err[2], " ", err[3]);
  CHECK(err[0] > err[1]);
  CHECK(err[1] > err[2]);
  CHECK(err[2] < 0.35);
  CHECK(err[3] < 1e-6);
}

TEST_CASE("VaePatch: sizes the VAE cannot take are clear errors on every rank") {
  using L = Layout<TP<2>, VaePatch<2>, OnCpu>;
  const auto bad = Tensor<float>::zeros({1, 3, 100, 64});
  auto encode_bad = [&](auto& rank) { return vae().encode(bad, VaeRunOptions::tiled(8), rank.vae_patch); };
  CHECK_THROWS_WITH_AS(run_ranks<L>(encode_bad), doctest::Contains("image size 100x64 must be a multiple of the VAE factor 8"), Error);
  CHECK_THROWS_WITH_AS(VaeTiling::patches(1, 8, 4, 1, 8, 1), doctest::Contains("too small for 2x2 patches"), Error);
  // a huge tile once overflowed tile·8 and the run "succeeded"; a tile of 0 or less has no grid
  CHECK_THROWS_WITH_AS(VaeTiling::tiled(64, 64, std::int64_t(1) << 61, 8, 1),
                       doctest::Contains("the tile must be positive and tile·8 and size·8 must fit int64"), Error);
  CHECK_THROWS_AS(VaeTiling::tiled(64, 64, -4, 8, 1), Error);
}

TEST_CASE("VaePatch tiled: an input no larger than one tile is decoded whole, as the reference does") {
  const auto z = random({1, 4, 8, 6}, 3);
  const auto whole = vae().decode(z);
  CHECK(identical(vae().decode(z, VaeRunOptions::tiled(8)), whole));
  auto out = run_ranks<Layout<TP<2>, VaePatch<2>, OnCpu>>(
      [&](auto& rank) { return vae().decode(z, VaeRunOptions::tiled(8), rank.vae_patch); });
  for (auto& o : out) CHECK(identical(o, whole));
}

TEST_CASE("VaePatch patch-mode encode: block edges on whole latent pixels for any group size") {
  // 64 px is 8 latent rows: 3 blocks must cut at latent rows (2, 5), not at image rows 21 and 42
  const auto img = random({1, 3, 64, 48}, 12, 0.5f);
  const auto whole = vae().encode(img);
  auto out = run_ranks<Layout<DP<3>, VaePatch<3>, OnCpu>>(
      [&](auto& rank) { return vae().encode(img, VaeRunOptions::patch(8), rank.vae_patch); });
  for (auto& o : out) {
    REQUIRE(o.shape() == whole.shape());
    CHECK(identical(o, whole));  // a halo of 8 latent pixels covers the whole image: exact
  }
  CHECK(VaeTiling::patches(64, 48, 8, 0, 1, 8).regions.size() == 8);
}
