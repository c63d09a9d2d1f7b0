// The VAE on OnCuda — the same AutoencoderKL code as the CPU tests (BasicAutoencoderKL<C>) — and the
// ops under it: conv2d (3×3, stride-2 asymmetric padding, 1×1, a conv big enough to run in bands),
// upsample_nearest2x, transpose_last2 and modulate_channels_ against the CPU ops; decode / encode / tiled of FLUX.2's
// and FLUX.1's tiny VAEs against the diffusers goldens (fp32 1e-4, bf16 2e-2); VaePatch<2> over
// thread ranks sharing one GPU (device communicator) = the serial tiled decode. Skipped (77) without
// a GPU; CI's compile probe of the device VAE. HunyuanImage-3.0's 3-D VAE decoder (BasicVaeDecoder3d<C>)
// against the official code's goldens, whole and as patches over VaePatch<2>.
#include <doctest/doctest.h>

#include <array>

#include "../layers/harness.hpp"
#include "../models/hunyuan_golden.hpp"
#include "pdiff/models/flux2/vae.hpp"
#include "pdiff/models/hunyuan_image3/vae.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path golden = fs::path(PDIFF_SOURCE_DIR) / "tests/golden";

template <class T>
Tensor<float> on_cuda_conv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& b, Conv2dArgs a) {
  auto d = [](const Tensor<float>& t) { return to<OnCuda>(convert<T>(t)); };
  return to_host_f32(conv2d(d(x), d(w), b.empty() ? Tensor<T, OnCuda>() : d(b), a));
}
}  // namespace

TEST_CASE("conv2d, upsample_nearest2x, transpose_last2 on CUDA = the CPU ops") {
  struct Case {
    Shape x, w;
    Conv2dArgs a;
    bool bias;
  };
  for (const Case& c : {Case{{2, 5, 13, 11}, {7, 5, 3, 3}, Conv2dArgs::same(1), true},
                        Case{{1, 6, 16, 12}, {6, 6, 3, 3}, Conv2dArgs{2, 0, 1, 0, 1}, true},
                        Case{{2, 8, 9, 7}, {4, 8, 1, 1}, {}, true}, Case{{1, 3, 8, 8}, {4, 3, 3, 3}, Conv2dArgs::same(1), false},
                        // K·Wo = 4608·1024: 14-row bands over 32 output rows
                        Case{{1, 512, 32, 1024}, {8, 512, 3, 3}, Conv2dArgs::same(1), true}}) {
    CAPTURE(c.x);
    CAPTURE(c.w);
    const auto x = random(c.x, 1), w = random(c.w, 2, 0.1f), b = c.bias ? random({c.w[0]}, 3) : Tensor<float>();
    const auto want = conv2d(x, w, b, c.a);
    CHECK(rel_err(on_cuda_conv<float>(x, w, b, c.a), want) < 1e-5);
    CHECK(rel_err(on_cuda_conv<bf16>(x, w, b, c.a), want) < 2e-2);
  }
  const auto x = random({2, 3, 5, 7}, 4);
  CHECK(max_abs(to<OnCpu>(upsample_nearest2x(to<OnCuda>(x))), upsample_nearest2x(x)) == 0.0);
  for (Shape s : {Shape{2, 5, 7}, Shape{1, 64, 100}, Shape{3, 33, 65}, Shape{70000, 4, 2}}) {  // last: B > 65535
    const auto t = random(s, 5);
    CHECK(max_abs(to<OnCpu>(transpose_last2(to<OnCuda>(t))), transpose_last2(t)) == 0.0);
  }
  // HunyuanImage-3.0's ResBlock: x·(1 + scale) + shift per (image, channel)
  auto m = random({2, 6, 4, 5}, 6);
  const auto ss = random({2, 12}, 7);
  auto md = to<OnCuda>(m);
  modulate_channels_(md, to<OnCuda>(ss));
  modulate_channels_(m, ss);
  CHECK(max_abs(to<OnCpu>(md), m) < 1e-6);
}

TEST_CASE("attention with one head of 512 (the VAE mid-block's GEMM path) = the CPU op, with its LSE; Sk past 48000") {
  for (auto [B, Sq, Sk] : {std::array<std::int64_t, 3>{2, 300, 300}, {1, 64, 50000}}) {
    CAPTURE(Sq);
    CAPTURE(Sk);
    const auto q = random({B, Sq, 1, 512}, 31), k = random({B, Sk, 1, 512}, 32), v = random({B, Sk, 1, 512}, 33);
    Tensor<float> lse;
    const auto want = attention(q, k, v, {}, &lse);
    Tensor<float, OnCuda> dlse;
    CHECK(rel_err(to<OnCpu>(attention(to<OnCuda>(q), to<OnCuda>(k), to<OnCuda>(v), {}, &dlse)), want) < 1e-5);
    CHECK(rel_err(to<OnCpu>(dlse), lse) < 1e-5);
    auto h = [](const Tensor<float>& t) { return to<OnCuda>(convert<bf16>(t)); };
    CHECK(rel_err(to_host_f32(attention(h(q), h(k), h(v))), want) < 2e-2);
  }
}

TEST_CASE("AutoencoderKL on CUDA equals diffusers: FLUX.2 and FLUX.1 VAEs, decode, encode, tiled (fp32 1e-4, bf16 2e-2 / decode 3e-2)") {
  for (auto dir : {golden / "flux2_tiny/dev/pipeline", golden / "flux1_vae_tiny"}) {
    CAPTURE(dir.string());
    const auto g = SafeTensors::open((dir / "vae_goldens.safetensors").string());
    const auto z = g.read("z"), img = g.read("image");
    auto check = [&](auto value, double tol, double decode_tol) {
      using C = Ctx<Layout<OnCuda>, decltype(value)>;
      const auto vae = BasicAutoencoderKL<C>::load(Checkpoint::open(dir / "vae"), AutoencoderKLConfig::load(dir / "vae"));
      CHECK(rel_err(vae.decode(z), g.read("decoded")) < decode_tol);
      CHECK(rel_err(vae.encode(img), g.read("encoded")) < tol);
      CHECK(rel_err(vae.decode(z, VaeRunOptions::tiled(8)), g.read("decoded_tiled")) < decode_tol);
    };
    check(float{}, 1e-4, 1e-4);
    // bf16 activations through the whole decoder (every conv, norm and upsample rounds to 8 bits): measured
    // 0.0204 (FLUX.2) and 0.0237 (FLUX.1) on an H200, 2026-12-04; the pipeline test's image bound is 3e-2 too
    check(bf16{}, 2e-2, 3e-2);
  }
}

TEST_CASE("TP<2> x VaePatch<2> on one GPU (device communicators): tiled decode = serial tiled on every rank") {
  using L = Layout<TP<2>, VaePatch<2>, OnCuda>;
  using C = Ctx<Layout<OnCuda>, float>;
  const auto dir = golden / "flux2_tiny/dev/pipeline/vae";
  auto load = [&] { return BasicAutoencoderKL<C>::load(Checkpoint::open(dir), AutoencoderKLConfig::load(dir)); };
  const auto z = random({1, 4, 20, 26}, 21);
  const auto serial = load().decode(z, VaeRunOptions::tiled(8));
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
    // each rank's weights on its own device (rank % GPUs)
    out[std::size_t(rank.index)] = load().decode(z, VaeRunOptions::tiled(8), rank.vae_patch);
  });
  for (const auto& o : out) CHECK(rel_err(o, serial) < 1e-6);
}

TEST_CASE("HunyuanImage-3.0's 3-D VAE on CUDA equals the reference: every frame (fp32 1e-4), the image (bf16 2e-2)") {
  const auto dir = golden / "hunyuan_image3_tiny";
  const auto g = SafeTensors::open((dir / "goldens.safetensors").string());
  const auto ck = Checkpoint::open(dir);
  const auto vae_cfg = JsonConfig::load(dir / "config.json").sub("vae");
  const auto z = g.read("final_latents");
  using F = Ctx<Layout<OnCuda>, float>;
  const auto vae = hunyuan_image3::BasicVaeDecoder3d<F>::load(ck, vae_cfg);
  const auto frames = vae.decode_frames(z);
  REQUIRE(frames.size() == 4);  // T 1 → 4
  for (std::int64_t t = 0; t < 4; ++t) {
    CAPTURE(t);
    CHECK(rel_err(to_host_f32(frames[std::size_t(t)]), hunyuan_golden_frame(g, t)) < 1e-4);
  }
  CHECK(rel_err(vae.decode(z), g.read("image_01")) < 1e-4);
  const auto half = hunyuan_image3::BasicVaeDecoder3d<Ctx<Layout<OnCuda>, bf16>>::load(ck, vae_cfg);
  CHECK(rel_err(half.decode(z), g.read("image_01")) < 2e-2);
  // patches over TP<2> x VaePatch<2> (thread ranks sharing the GPU) = the CPU's patch decode
  const auto host = hunyuan_image3::VaeDecoder3d::load(ck, vae_cfg);
  const auto want = run_ranks<Layout<TP<2>, VaePatch<2>, OnCpu>>(
      [&](auto& rank) { return host.decode(z, VaeRunOptions::patch(1), rank.vae_patch); })[0];
  using L = Layout<TP<2>, VaePatch<2>, OnCuda>;
  std::vector<Tensor<float>> out(std::size_t(L::world_size));
  launch<L>({.mode = Launch::threads, .comm = {.timeout = std::chrono::milliseconds(60000)}}, [&](auto& rank) {
    out[std::size_t(rank.index)] = hunyuan_image3::BasicVaeDecoder3d<F>::load(ck, vae_cfg).decode(z, VaeRunOptions::patch(1), rank.vae_patch);
  });
  for (const auto& o : out) CHECK(rel_err(o, want) < 1e-5);
}
