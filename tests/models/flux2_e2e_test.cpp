// FLUX.2-dev end to end against diffusers' Flux2Pipeline (tests/golden/flux2_tiny/dev/e2e, a folder
// saved by the reference's save_pretrained, goldens by tools/make_flux2_e2e_goldens.py): the prompt's
// tokens exactly, prompt embeddings, final latents and the decoded image, text-to-image and with a
// reference image, on serial and parallel layouts (thread ranks) from the same initial latents.
#include <doctest/doctest.h>

#include "../layers/harness.hpp"
#include <unistd.h>

#include <fstream>

#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path e2e = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/dev/e2e";
const char* prompt = "A red fox sitting in fresh snow, morning light, 35mm photo.";
}  // namespace

TEST_CASE("the chat-formatted prompt tokenizes exactly as the reference") {
  auto g = SafeTensors::open((e2e / "e2e_goldens.safetensors").string());
  const auto want_ids = g.read("input_ids"), want_mask = g.read("attention_mask");
  const auto got = encode_flux2_prompt(Tokenizer::load(e2e / "tokenizer"), prompt);
  REQUIRE(std::int64_t(got.ids.size()) == want_ids.numel());
  int mismatches = 0;
  for (std::int64_t i = 0; i < want_ids.numel(); ++i)
    mismatches += (got.ids[std::size_t(i)] != std::int32_t(want_ids(i))) + (got.mask[std::size_t(i)] != std::int32_t(want_mask(i)));
  CHECK(mismatches == 0);
}

struct E2E {
  std::vector<Tensor<float>> embeds, t2i_lat, t2i_img, i2i_lat, i2i_img;
};

// Both runs (text-to-image, then editing with reference.png) on every rank of L.
template <class L>
E2E run_e2e(const VaeRunOptions& vae) {
  auto g = SafeTensors::open((e2e / "e2e_goldens.safetensors").string());
  const auto init = g.read("latents_init");
  const auto ref = image_to_tensor(read_image((e2e / "../pipeline/reference.png").string()));
  E2E o;
  for (auto* v : {&o.embeds, &o.t2i_lat, &o.i2i_lat, &o.i2i_img}) v->resize(L::world_size);
  o.t2i_img = run_ranks<L>([&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, e2e);
    const auto i = std::size_t(rank.index);
    o.embeds[i] = pipe.encode_prompt(rank, prompt);
    Flux2Request q{.prompt = prompt, .width = 128, .height = 96, .steps = 4, .guidance = 4.0f, .latents = &init,
                   .vae = vae, .progress = false};
    auto t2i = pipe.generate(rank, q);
    o.t2i_lat[i] = t2i.latents;
    q.images = {ref};
    auto i2i = pipe.generate(rank, q);
    o.i2i_lat[i] = i2i.latents, o.i2i_img[i] = i2i.image;
    return t2i.image;
  });
  return o;
}

TEST_CASE_TEMPLATE("Flux2Pipeline text-to-image and image editing equal diffusers", L, Layout<OnCpu>,
                   Layout<TP<2>, OnCpu>, Layout<TP<2>, Ulysses<2>, OnCpu>, Layout<Ring<2>, OnCpu>) {
  auto g = SafeTensors::open((e2e / "e2e_goldens.safetensors").string());
  const auto o = run_e2e<L>(VaeRunOptions::whole());
  for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) {
    CAPTURE(i);
    CHECK(rel_err(o.embeds[i], g.read("prompt_embeds")) < 1e-4);
    CHECK(rel_err(o.t2i_lat[i], g.read("t2i_final_latents")) < 1e-4);
    CHECK(rel_err(o.t2i_img[i], g.read("t2i_image")) < 1e-4);
    CHECK(rel_err(o.i2i_lat[i], g.read("i2i_final_latents")) < 1e-4);
    CHECK(rel_err(o.i2i_img[i], g.read("i2i_image")) < 1e-4);
    CHECK(rel_err(o.t2i_img[i], o.t2i_img[0]) < 1e-6);
  }
}

TEST_CASE("Flux2Pipeline on Ring<2> x VaePatch<2> equals the serial pipeline with the same VAE tiling") {
  const auto tiled = VaeRunOptions::tiled(4);  // 4-latent-pixel tiles: the 6x8 latent becomes 2x3 tiles
  const auto serial = run_e2e<Layout<OnCpu>>(tiled);
  const auto par = run_e2e<Layout<Ring<2>, VaePatch<2>, OnCpu>>(tiled);
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(rel_err(par.t2i_lat[i], serial.t2i_lat[0]) < 1e-5);
    CHECK(rel_err(par.t2i_img[i], serial.t2i_img[0]) < 1e-5);
    CHECK(rel_err(par.i2i_lat[i], serial.i2i_lat[0]) < 1e-5);
    CHECK(rel_err(par.i2i_img[i], serial.i2i_img[0]) < 1e-5);
  }
  // the tiling is real: the tiled image differs from the untiled golden
  auto g = SafeTensors::open((e2e / "e2e_goldens.safetensors").string());
  CHECK(rel_err(serial.t2i_img[0], g.read("t2i_image")) > 1e-3);
}

TEST_CASE("Flux2Pipeline: bad input is a clear error") {
  using L = Layout<OnCpu>;
  CHECK_THROWS_WITH_AS(run_ranks<L>([&](auto& rank) { return Flux2Pipeline<L>::load(rank, e2e / "vae"), Tensor<float>(); }),
                       doctest::Contains("model_index.json"), Error);
  auto run = [&](Flux2Request q) {
    return run_ranks<L>([&](auto& rank) { return Flux2Pipeline<L>::load(rank, e2e).generate(rank, q).image; });
  };
  CHECK_THROWS_WITH_AS(run({.prompt = "x", .width = 128, .height = 100, .steps = 1, .progress = false}),
                       doctest::Contains("must be multiples of 16"), Error);
  CHECK_THROWS_WITH_AS(run({.prompt = "x", .width = 128, .height = 96, .steps = 0, .progress = false}),
                       doctest::Contains("steps (0) must be >= 1"), Error);
}

namespace {
// A copy of the tiny dev folder in a temporary place, to be broken by the test.
fs::path scratch_copy(const std::string& name) {
  const fs::path dst = fs::temp_directory_path() / ("pdiff_flux2_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::copy(e2e, dst, fs::copy_options::recursive);
  return dst;
}
template <class L>
void load_only(const fs::path& dir) {
  run_ranks<L>([&](auto& rank) { return Flux2Pipeline<L>::load(rank, dir), Tensor<float>(); });
}
}  // namespace

TEST_CASE("Flux2Pipeline: a broken folder or layout is a clear error naming the problem") {
  using L = Layout<OnCpu>;
  SUBCASE("missing component folder") {
    const auto dir = scratch_copy("no_tokenizer");
    fs::remove_all(dir / "tokenizer");
    CHECK_THROWS_WITH_AS(load_only<L>(dir), doctest::Contains("has no tokenizer/ folder"), Error);
    fs::remove_all(dir);
  }
  SUBCASE("config and checkpoint disagree") {
    const auto dir = scratch_copy("mismatch");
    auto text = JsonConfig::load(dir / "transformer/config.json").json();
    text["joint_attention_dim"] = 64;
    std::ofstream(dir / "transformer/config.json") << text.dump();
    CHECK_THROWS_WITH_AS(load_only<L>(dir), doctest::Contains("context_embedder.weight"), Error);
    fs::remove_all(dir);
  }
  SUBCASE("heads not divisible by the layout") {
    // the tiny text encoder has 2 heads and the transformer 4: TP<4> cannot split the encoder
    using TP4 = Layout<TP<4>, OnCpu>;
    CHECK_THROWS_WITH_AS(load_only<TP4>(e2e), doctest::Contains("divisible"), Error);
  }
  SUBCASE("unreadable input image") {
    CHECK_THROWS_WITH_AS(read_image((e2e / "model_index.json").string()),
                         doctest::Contains("read_image: cannot read '"), Error);
  }
}

TEST_CASE_TEMPLATE("caption upsampling: chat input and greedy continuation equal transformers", L, Layout<OnCpu>,
                   Layout<TP<2>, OnCpu>) {
  std::ifstream in(e2e / "upsample_goldens.json");
  const auto golden = nlohmann::json::parse(in);
  const int new_tokens = golden["max_new_tokens"].get<int>();
  std::vector<std::vector<std::string>> texts(L::world_size);
  run_ranks<L>([&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, e2e, {.caption_upsampling = true});
    for (const auto& c : golden["cases"]) {
      const auto prompt = c["prompt"].get<std::string>();
      // the chat input (system message, template) tokenizes as the reference's apply_chat_template
      const auto ids = pipe.tokenizer.encode(flux2_chat_text(prompt, flux2_upsampling_system_t2i, pipe.tokenizer.bos_token()), false);
      CHECK(std::vector<std::int64_t>(ids.begin(), ids.end()) == c["input_ids"].get<std::vector<std::int64_t>>());
      texts[std::size_t(rank.index)].push_back(pipe.upsample_prompt(rank, prompt, 0.0f, 0, new_tokens));
    }
    return Tensor<float>();
  });
  for (int r = 0; r < L::world_size; ++r)
    for (std::size_t i = 0; i < golden["cases"].size(); ++i) {
      CAPTURE(i);
      CHECK(texts[std::size_t(r)][i] == golden["cases"][i]["text"].get<std::string>());
    }
}

TEST_CASE("caption upsampling: clean-up rules and clear errors") {
  CHECK(clean_up_tokenization("a cat , a dog . Is it ? yes ! it 's he 're I 'm they 've do n't") ==
        "a cat, a dog. Is it? yes! it's he're I'm they've don't");
  using L = Layout<OnCpu>;
  auto run = [&](Flux2Request q, bool upsampling) {
    return run_ranks<L>([&](auto& rank) {
      return Flux2Pipeline<L>::load(rank, e2e, {.caption_upsampling = upsampling}).generate(rank, q).image;
    });
  };
  CHECK_THROWS_WITH_AS(run({.prompt = "x", .width = 128, .height = 96, .steps = 1, .progress = false,
                            .upsample_temperature = 0.15f}, false),
                       doctest::Contains("caption_upsampling = true"), Error);
  const auto ref = image_to_tensor(read_image((e2e / "../pipeline/reference.png").string()));
  CHECK_THROWS_WITH_AS(run({.prompt = "x", .images = {ref}, .steps = 1, .progress = false, .upsample_temperature = 0.15f}, true),
                       doctest::Contains("vision tower"), Error);
}
