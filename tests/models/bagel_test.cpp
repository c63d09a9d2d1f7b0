// BAGEL-7B-MoT text-to-image against the official code (tests/golden/bagel_tiny, made by
// tools/make_bagel_goldens.py from github ByteDance-Seed/Bagel run on CPU in fp32): the tokens, the
// prefill KV cache, one step's three branch velocities and their guidance combines (global, channel,
// text_channel), whole 3-step generations with the FLUX.1 AE decode, the AE from BFL names; every
// layout (TP<2>, CFG<2>, CFG<3>, TP<2> x CFG<2>, TP<2> x VaePatch<2>) equals serial.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include "pdiff/models/bagel/pipeline.hpp"
#include "pdiff/models/bagel/plan.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/bagel_tiny";

SafeTensors goldens() { return SafeTensors::open((dir / "goldens.safetensors").string()); }

std::vector<std::int64_t> ids_of(const Tensor<float>& t) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(std::int64_t(t(i)));
  return v;
}

BagelRequest request(const SafeTensors& g, const std::string& run, const Tensor<float>* noise) {
  BagelRequest q;
  q.prompt = run == "t2iA" ? "a red circle on a blue background" : "a yellow star above green hills";
  q.height = 64, q.width = run == "t2iA" ? 64 : 96;
  q.num_timesteps = 4;
  q.guidance.renorm = run == "t2iA" ? BagelRenorm::global : BagelRenorm::channel;
  q.noise = noise;
  q.progress = false;
  (void)g;
  return q;
}

template <class L>
std::vector<Tensor<float>> generate(const std::string& run, bool want_image, VaeRunOptions vae = {}) {
  const auto g = goldens();
  const auto noise = g.read(run + ".init_noise");
  auto q = request(g, run, &noise);
  q.vae = vae;
  return run_ranks<L>([&](auto& rank) {
    const auto p = BagelPipeline<L>::load(rank, dir);
    auto r = p.generate(rank, q);
    return want_image ? r.image : r.latent;
  });
}
}  // namespace

static_assert(std::is_same_v<Bagel<VaePatch<2>, TP<2>, OnCpu>::layout, Layout<TP<2>, VaePatch<2>, OnCpu>>);

TEST_CASE("BAGEL: config from the folder, tokens and schedule as the reference") {
  const auto g = goldens();
  const auto p = run_ranks<Layout<OnCpu>>([&](auto& rank) {
    const auto pipe = BagelPipeline<Layout<OnCpu>>::load(rank, dir);
    CHECK(pipe.cfg.hidden_size == 64);
    CHECK(pipe.cfg.num_hidden_layers == 2);
    CHECK(pipe.cfg.latent_channels == 16);
    CHECK(pipe.cfg.latent_patch_size == 2);
    CHECK(pipe.cfg.latent_downsample() == 16);
    CHECK(pipe.vae.config.block_out_channels == std::vector<std::int64_t>{32, 32, 64, 64});
    CHECK(pipe.vae.config.layers_per_block == 1);
    CHECK(pipe.bos == 301);
    CHECK(pipe.eos == 300);
    CHECK(pipe.start_of_image == 304);
    CHECK(pipe.end_of_image == 305);
    for (std::string run : {"t2iA", "t2iB"}) {
      const auto q = request(g, run, nullptr);
      CHECK(pipe.text_ids(q) == ids_of(g.read(run + ".text_ids")));
    }
    return Tensor<float>();
  });
  const auto ts = bagel_timesteps(4, 3.0f);
  const auto want = g.read("t2iA.timesteps");
  for (int i = 0; i < 3; ++i) CHECK(ts[std::size_t(i)] == doctest::Approx(want(i)).epsilon(1e-7));
  CHECK(ts[3] == 0.0f);
  CHECK_THROWS_WITH_AS(bagel_timesteps(1, 3.0f), doctest::Contains("num_timesteps (1) must be >= 2"), Error);
  CHECK_THROWS_WITH_AS(parse_bagel_renorm("none"), doctest::Contains("not one of global, channel, text_channel"), Error);
}

TEST_CASE("BAGEL: the prefill KV cache, one step's branch velocities and the three guidance combines") {
  const auto g = goldens();
  using L = Layout<OnCpu>;
  run_ranks<L>([&](auto& rank) {
    const auto p = BagelPipeline<L>::load(rank, dir);
    const auto q = request(g, "t2iA", nullptr);
    typename BagelPipeline<L>::Context gen, empty;
    const auto ids = p.text_ids(q);
    p.prefill_text(rank, gen, ids);
    CHECK(gen.length == 19);
    CHECK(gen.rope == std::int64_t(g.read("t2iA.gen.rope")(0)));
    for (int l = 0; l < 2; ++l) {
      const auto k = g.read("t2iA.kv." + std::to_string(l) + ".k"), v = g.read("t2iA.kv." + std::to_string(l) + ".v");
      CHECK(rel_err(gen.layers[std::size_t(l)].k.view(k.shape()), k) < 1e-5);
      CHECK(rel_err(gen.layers[std::size_t(l)].v.view(v.shape()), v) < 1e-5);
    }
    // one MoT layer: the step-0 block [vision_start, 16 latents, vision_end] through layer 0 against the prompt
    const MotRun runs[] = {{MotMode::und, 0, 1}, {MotMode::gen, 1, 16}, {MotMode::und, 17, 1}};
    const std::vector<std::int64_t> pos(18, gen.rope);
    CHECK(std::int64_t(g.read("mot.kv_len")(0)) == gen.length);
    const auto layer0 = p.llm.forward(rank, g.read("mot.in").view({1, 18, 64}), runs, pos, false, gen, false, 1);
    CHECK(rel_err(to_host_f32(layer0).view({18, 64}), g.read("mot.out")) < 1e-5);
    const auto x = g.read("t2iA.step.x");
    const float t = g.read("t2iA.step.t")(0);
    const auto v_gen = p.velocity(rank, gen, x, t, 4, 4);
    const auto v_ct = p.velocity(rank, empty, x, t, 4, 4);
    CHECK(rel_err(v_gen, g.read("t2iA.step.v_gen")) < 1e-4);
    CHECK(rel_err(v_ct, g.read("t2iA.step.v_cfg_text")) < 1e-4);
    // text-to-image: the cfg_img context is the text alone, gen's, so its velocity is gen's
    CHECK(max_abs(g.read("t2iA.step.v_cfg_img"), g.read("t2iA.step.v_gen")) == 0.0);
    BagelGuidance gd;
    const auto rg = g.read("t2iA.step.v_gen"), rct = g.read("t2iA.step.v_cfg_text"), rci = g.read("t2iA.step.v_cfg_img");
    for (auto [mode, key] : {std::pair{BagelRenorm::global, "global"}, {BagelRenorm::channel, "channel"},
                             {BagelRenorm::text_channel, "text_channel"}}) {
      gd.renorm = mode;
      const auto want = g.read(std::string("t2iA.step.v_") + key);
      CHECK_MESSAGE(rel_err(bagel_combine(v_gen, &v_ct, &v_gen, gd.at(t), gd), want) < 1e-4, key);
      // from the reference's own branch velocities, the combine alone
      CHECK_MESSAGE(rel_err(bagel_combine(rg, &rct, &rci, gd.at(t), gd), want) < 1e-6, key);
    }
    // outside the interval and at text scale <= 1 there is no guidance
    CHECK(max_abs(bagel_combine(v_gen, &v_ct, &v_gen, gd.at(0.2f), gd), v_gen) == 0.0);
    return Tensor<float>();
  });
}

TEST_CASE("BAGEL: 3-step text-to-image equals the reference (latents and decoded image)") {
  const auto g = goldens();
  for (std::string run : {"t2iA", "t2iB"}) {
    const auto lat = generate<Layout<OnCpu>>(run, false)[0];
    CHECK_MESSAGE(rel_err(lat, g.read(run + ".latent")) < 1e-4, run);
    const auto img = generate<Layout<OnCpu>>(run, true)[0];
    auto want = g.read(run + ".image");  // [-1, 1] before the uint8 conversion
    for (std::int64_t i = 0; i < want.numel(); ++i) want(i) = std::clamp(want(i) * 0.5f + 0.5f, 0.0f, 1.0f);
    CHECK_MESSAGE(max_abs(img.view(want.shape()), want) < 1e-4, run);
  }
}

TEST_CASE("BAGEL: the FLUX.1 AE read from BFL names equals the reference's decode and encode") {
  const auto g = goldens();
  auto ck = Checkpoint::open_files({dir / "ae.safetensors"});
  const auto ae = AutoencoderKL::load(ck, bfl_autoencoder_config(ck));
  CHECK(rel_err(ae.decode(ae.from_latents(g.read("vae.decode_in"))), g.read("vae.decode_out")) < 1e-5);
  const auto mean = ae.encode(g.read("vae.encode_in"));  // the posterior mean: encoder moments [:z]
  CHECK(rel_err(mean, narrow(g.read("vae.encode_moments"), 1, 0, 16)) < 1e-5);
  CHECK(rel_err(ae.to_latents(mean), g.read("vae.encode_mean")) < 1e-5);  // 0.3611 · (mean − 0.1159)
  CHECK_THROWS_WITH_AS(bfl_autoencoder_config(ck = Checkpoint::open_files({dir / "ema.safetensors"})),
                       doctest::Contains("no BFL autoencoder tensors"), Error);
}

TEST_CASE("BAGEL: TP<2>, CFG<2>, CFG<3>, TP<2> x CFG<2> and TP<2> x VaePatch<2> equal serial") {
  const auto serial = generate<Layout<OnCpu>>("t2iB", true)[0];
  const auto serial_lat = generate<Layout<OnCpu>>("t2iB", false)[0];
  auto same = [&](const std::vector<Tensor<float>>& r, double tol, const char* what) {
    for (std::size_t i = 0; i < r.size(); ++i) CHECK_MESSAGE(max_abs(r[i], r[0]) == 0.0, what, " rank ", i);
    CHECK_MESSAGE(max_abs(r[0], serial_lat) <= tol, what);
  };
  same(generate<Layout<TP<2>, OnCpu>>("t2iB", false), 1e-5, "TP<2>");
  same(generate<Layout<CFG<2>, OnCpu>>("t2iB", false), 0.0, "CFG<2>");  // the same arithmetic: bit-identical
  same(generate<Layout<CFG<3>, OnCpu>>("t2iB", false), 0.0, "CFG<3>");
  same(generate<Layout<TP<2>, CFG<2>, OnCpu>>("t2iB", false), 1e-5, "TP<2> x CFG<2>");
  const auto vp = generate<Layout<TP<2>, VaePatch<2>, OnCpu>>("t2iB", true, VaeRunOptions::patch());
  for (auto& im : vp) CHECK(max_abs(im, serial) < 1e-4);  // the default halo covers the 8x12 latents: exact
}

TEST_CASE("BAGEL: bad requests are clear errors") {
  using L = Layout<OnCpu>;
  run_ranks<L>([&](auto& rank) {
    const auto p = BagelPipeline<L>::load(rank, dir);
    BagelRequest q;
    q.prompt = "a red circle";
    q.progress = false;
    q.num_timesteps = 2;
    q.width = 72, q.height = 64;
    CHECK_THROWS_WITH_AS(p.generate(rank, q), doctest::Contains("must be positive multiples of 16"), Error);
    q.width = 64 * 16 + 16;
    CHECK_THROWS_WITH_AS(p.generate(rank, q), doctest::Contains("max_latent_size"), Error);
    q.width = 64;
    q.num_timesteps = 1;
    CHECK_THROWS_WITH_AS(p.generate(rank, q), doctest::Contains("num_timesteps (1) must be >= 2"), Error);
    q.num_timesteps = 2;
    q.guidance.interval_lo = 0.9f, q.guidance.interval_hi = 0.1f;
    CHECK_THROWS_WITH_AS(p.generate(rank, q), doctest::Contains("cfg interval"), Error);
    q.guidance = {};
    const Tensor<float> wrong({3, 64});
    q.noise = &wrong;
    CHECK_THROWS_WITH_AS(p.generate(rank, q), doctest::Contains("noise(3, 64) must be (16, 64)"), Error);
    CHECK_THROWS_WITH_AS(BagelPipeline<L>::load(rank, dir / "missing"), doctest::Contains("has no llm_config.json"),
                         Error);
    return Tensor<float>();
  });
}

TEST_CASE("BAGEL: --plan memory of the released model") {
  const auto c = bagel_released();
  const auto p1 = bagel_param_plan(c, 1), p2 = bagel_param_plan(c, 2);
  const double total = double(p1.sharded + p1.replicated);
  CHECK(total > 13.5e9);  // two 6.5B weight sets + embeddings: "7B active, 14B total"
  CHECK(total < 14.5e9);
  CHECK(p2.gib(2) < 0.52 * p1.gib(2));
  CHECK_THROWS_WITH_AS(bagel_param_plan(c, 3), doctest::Contains("28 heads over TP<3>"), Error);
}

namespace {
BagelRequest edit_request(const Image& img, const Tensor<float>* noise, const Tensor<float>* eps) {
  BagelRequest q;
  q.prompt = "make it blue";
  q.image = &img;
  q.num_timesteps = 4;
  q.guidance.img_scale = 2.0f;  // the reference's editing default
  q.vae_transform = {64, 32, 16};
  q.vit_transform = {56, 28, 14};
  q.noise = noise;
  q.encode_noise = eps;
  q.progress = false;
  return q;
}

template <class L>
std::vector<Tensor<float>> edit(bool want_image) {
  const auto g = goldens();
  const auto img = read_image((dir / "edit_input.png").string());
  const auto noise = g.read("edit.init_noise"), eps = g.read("edit.encode_eps");
  const auto q = edit_request(img, &noise, &eps);
  return run_ranks<L>([&](auto& rank) {
    const auto p = BagelPipeline<L>::load(rank, dir);
    auto r = p.generate(rank, q);
    return want_image ? r.image : r.latent;
  });
}
}  // namespace

TEST_CASE("BAGEL editing: Pillow's bicubic resize and the transforms give the reference's pixels") {
  const auto g = goldens();
  const auto img = read_image((dir / "edit_input.png").string());
  CHECK(BagelImageTransform{64, 32, 16}.size(64, 64) == std::pair<std::int64_t, std::int64_t>{64, 64});
  CHECK(BagelImageTransform{56, 28, 14}.size(64, 64) == std::pair<std::int64_t, std::int64_t>{56, 56});
  // app.py's transforms: sizes the reference's MaxLongEdgeMinShortEdgeResize gives (1000 / 16 = 62.5 rounds to even)
  using WH = std::pair<std::int64_t, std::int64_t>;
  const BagelImageTransform vae_t, vit_t{980, 224, 14};
  for (auto [in, a, b] : {std::tuple{WH{1000, 700}, WH{992, 704}, WH{980, 686}}, {WH{4000, 3000}, WH{1024, 768}, WH{980, 728}},
                          {WH{300, 200}, WH{768, 512}, WH{336, 224}}, {WH{1023, 77}, WH{1024, 80}, WH{980, 70}}}) {
    CHECK(vae_t.size(in.first, in.second) == a);
    CHECK(vit_t.size(in.first, in.second) == b);
  }
  const auto vae_px = BagelImageTransform::to_tensor(BagelImageTransform{64, 32, 16}(img));
  CHECK(max_abs(vae_px, g.read("edit.vae_pixels")) == 0.0);
  const auto vit = BagelImageTransform{56, 28, 14}(img);
  REQUIRE(vit.width == 56);
  const auto t = BagelImageTransform::to_tensor(vit);
  const auto want = g.read("edit.vit_pixels");  // (16, 14·14·3) patches (p, q, c)
  double worst = 0;
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t c = 0; c < 4; ++c)
      for (std::int64_t a = 0; a < 14; ++a)
        for (std::int64_t b = 0; b < 14; ++b)
          for (std::int64_t ch = 0; ch < 3; ++ch)
            worst = std::max(worst, double(std::fabs(t((ch * 56 + r * 14 + a) * 56 + c * 14 + b) -
                                                     want((r * 4 + c) * 588 + (a * 14 + b) * 3 + ch))));
  CHECK(worst == 0.0);  // bit for bit: the same 8-bit pixels
}

TEST_CASE("BAGEL editing: the ViT tokens, the three contexts and one step's branches equal the reference") {
  const auto g = goldens();
  const auto img = read_image((dir / "edit_input.png").string());
  const auto eps = g.read("edit.encode_eps");
  using L = Layout<OnCpu>;
  run_ranks<L>([&](auto& rank) {
    const auto p = BagelPipeline<L>::load(rank, dir);
    REQUIRE(p.vit);
    const auto vt = p.vit->forward(rank, g.read("edit.vit_pixels"), 4, 4);
    CHECK(rel_err(vt.vit_out, g.read("edit.vit_out")) < 1e-5);
    CHECK(rel_err(vt.tokens, g.read("edit.vit_tokens")) < 1e-5);
    const auto q = edit_request(img, nullptr, &eps);
    const auto e = p.prepare_edit_image(rank, q);
    CHECK(e.h == 4);
    CHECK(rel_err(e.latent_tokens, p.patchify(g.read("edit.encoded_latent").view({1, 16, 8, 8}), 4, 4)) < 1e-5);
    typename BagelPipeline<L>::Context ctx[3];
    p.build_contexts(rank, q, &e, ctx);
    const char* names[] = {"gen", "cfg_text", "cfg_img"};
    for (int b = 0; b < 3; ++b) {
      const std::string n = std::string("edit.") + names[b];
      CHECK_MESSAGE(ctx[b].length == std::int64_t(g.read(n + ".kv_len")(0)), n);
      CHECK_MESSAGE(ctx[b].rope == std::int64_t(g.read(n + ".rope")(0)), n);
      for (int l = 0; l < 2; ++l) {
        const auto k = g.read(n + ".kv." + std::to_string(l) + ".k"), v = g.read(n + ".kv." + std::to_string(l) + ".v");
        CHECK_MESSAGE(rel_err(ctx[b].layers[std::size_t(l)].k.view(k.shape()), k) < 1e-5, n, " layer ", l);
        CHECK_MESSAGE(rel_err(ctx[b].layers[std::size_t(l)].v.view(v.shape()), v) < 1e-5, n, " layer ", l);
      }
    }
    const auto x = narrow(g.read("edit.steps.x"), 0, 0, 1).view({16, 64});
    const float t = g.read("edit.timesteps")(0);
    const auto v0 = p.velocity(rank, ctx[0], x, t, 4, 4), v1 = p.velocity(rank, ctx[1], x, t, 4, 4),
               v2 = p.velocity(rank, ctx[2], x, t, 4, 4);
    CHECK(rel_err(v0, g.read("edit.step.v_gen")) < 1e-4);
    CHECK(rel_err(v1, g.read("edit.step.v_cfg_text")) < 1e-4);
    CHECK(rel_err(v2, g.read("edit.step.v_cfg_img")) < 1e-4);
    CHECK(rel_err(bagel_combine(v0, &v1, &v2, q.guidance.at(t), q.guidance), g.read("edit.step.v_global")) < 1e-4);
    return Tensor<float>();
  });
}

TEST_CASE("BAGEL editing: 3 steps equal the reference; CFG<2>, CFG<3>, TP<2> x CFG<3> equal serial") {
  const auto g = goldens();
  const auto lat = edit<Layout<OnCpu>>(false)[0];
  CHECK(rel_err(lat, g.read("edit.latent")) < 1e-4);
  const auto img = edit<Layout<OnCpu>>(true)[0];
  auto want = g.read("edit.image");
  for (std::int64_t i = 0; i < want.numel(); ++i) want(i) = std::clamp(want(i) * 0.5f + 0.5f, 0.0f, 1.0f);
  CHECK(max_abs(img.view(want.shape()), want) < 1e-4);
  for (auto& r : edit<Layout<CFG<2>, OnCpu>>(false)) CHECK(max_abs(r, lat) == 0.0);
  for (auto& r : edit<Layout<CFG<3>, OnCpu>>(false)) CHECK(max_abs(r, lat) == 0.0);
  const auto tp = edit<Layout<TP<2>, CFG<3>, OnCpu>>(false);
  for (auto& r : tp) {
    CHECK(max_abs(r, tp[0]) == 0.0);
    CHECK(max_abs(r, lat) < 1e-5);
  }
}
