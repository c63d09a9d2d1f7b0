// FLUX.2-klein (base, not distilled) end to end against diffusers' Flux2KleinPipeline
// (tests/golden/flux2_tiny/klein/e2e, saved by save_pretrained; goldens by
// tools/make_flux2_klein_e2e_goldens.py): the Qwen3 chat-formatted prompt's tokens exactly, the Qwen3
// encoder's prompt and negative ("") embeddings, true-CFG final latents and image, on serial, CFG<2>
// and TP<2> x CFG<2> (thread ranks); CFG<2> bit-identical to serial; one branch when guidance <= 1
// or the model is distilled, as the reference; CFG<2> with one branch a clear error.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>

#include "../layers/harness.hpp"
#include "pdiff/models/flux2/pipeline.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path e2e = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e";
const char* prompt = "A red fox sitting in fresh snow, morning light, 35mm photo. Ünïcödé — «quoted» 123456!";

SafeTensors goldens() { return SafeTensors::open((e2e / "e2e_goldens.safetensors").string()); }

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

// A folder whose parts link to the committed klein folder, with model_index.json's is_distilled set.
fs::path distilled_copy() {
  const fs::path dir = fs::temp_directory_path() / "pdiff_flux2_klein_distilled";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* part : {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"})
    fs::create_directory_symlink(fs::absolute(e2e / part), dir / part);
  auto index = JsonConfig::load(e2e / "model_index.json").json();
  index["is_distilled"] = true;
  std::ofstream(dir / "model_index.json") << index.dump(2);
  return dir;
}

struct Run {
  std::vector<Tensor<float>> embeds, negative, latents, image;
};

// Text-to-image 128x96, 4 steps, from the reference's initial latents, on every rank of L.
template <class L>
Run run(const fs::path& dir, float guidance, bool encode = true) {
  auto g = goldens();
  const auto init = g.read("latents_init");
  Run o;
  for (auto* v : {&o.embeds, &o.negative, &o.latents}) v->resize(L::world_size);
  o.image = run_ranks<L>([&](auto& rank) {
    const auto pipe = Flux2Pipeline<L>::load(rank, dir);
    const auto i = std::size_t(rank.index);
    if (encode) o.embeds[i] = pipe.encode_prompt(rank, prompt), o.negative[i] = pipe.encode_prompt(rank, "");
    auto r = pipe.generate(rank, {.prompt = prompt, .width = 128, .height = 96, .steps = 4, .guidance = guidance,
                                  .latents = &init, .progress = false});
    o.latents[i] = r.latents;
    return r.image;
  });
  return o;
}
}  // namespace

TEST_CASE("the Qwen3 chat-formatted prompt and the empty negative prompt tokenize exactly as the reference") {
  auto g = goldens();
  const auto tok = Tokenizer::load(e2e / "tokenizer");
  CHECK(qwen3_chat_text("hi", false) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  for (auto [text, name] : {std::pair<const char*, std::string>{prompt, ""}, {"", "negative_"}}) {
    CAPTURE(name);
    const auto want_ids = g.read(name + "input_ids"), want_mask = g.read(name + "attention_mask");
    const auto got = encode_flux2_klein_prompt(tok, text);
    REQUIRE(std::int64_t(got.ids.size()) == want_ids.numel());
    int mismatches = 0;
    for (std::int64_t i = 0; i < want_ids.numel(); ++i)
      mismatches += (got.ids[std::size_t(i)] != std::int32_t(want_ids(i))) +
                    (got.mask[std::size_t(i)] != std::int32_t(want_mask(i)));
    CHECK(mismatches == 0);
    CHECK(got.length > 10);  // the chat template's tokens are there, padding follows
  }
}

TEST_CASE_TEMPLATE("Flux2Pipeline on a klein folder: Qwen3 embeddings and true-CFG text-to-image equal diffusers", L,
                   Layout<OnCpu>, Layout<CFG<2>, OnCpu>, Layout<TP<2>, CFG<2>, OnCpu>) {
  auto g = goldens();
  const auto o = run<L>(e2e, 3.0f);
  for (std::size_t i = 0; i < std::size_t(L::world_size); ++i) {
    CAPTURE(i);
    CHECK(rel_err(o.embeds[i], g.read("prompt_embeds")) < 1e-4);
    CHECK(rel_err(o.negative[i], g.read("negative_prompt_embeds")) < 1e-4);
    CHECK(rel_err(o.latents[i], g.read("cfg_final_latents")) < 1e-4);
    CHECK(rel_err(o.image[i], g.read("cfg_image")) < 1e-4);
    CHECK(same_bits(o.latents[i], o.latents[0]));
  }
  MESSAGE("world ", L::world_size, ": rel err embeds ", rel_err(o.embeds[0], g.read("prompt_embeds")), ", negative ",
          rel_err(o.negative[0], g.read("negative_prompt_embeds")), ", latents ",
          rel_err(o.latents[0], g.read("cfg_final_latents")), ", image ", rel_err(o.image[0], g.read("cfg_image")));
  // the negative branch matters: CFG and one-branch results differ (by ~0.8% on this tiny model)
  CHECK(rel_err(o.latents[0], g.read("nocfg_final_latents")) > 1e-3);
}

TEST_CASE("Flux2Pipeline klein: CFG<2> is bit-identical to serial, and TP<2> x CFG<2> to TP<2>") {
  const auto serial = run<Layout<OnCpu>>(e2e, 3.0f, false);
  const auto cfg2 = run<Layout<CFG<2>, OnCpu>>(e2e, 3.0f, false);
  const auto tp2 = run<Layout<TP<2>, OnCpu>>(e2e, 3.0f, false);
  const auto tp2cfg2 = run<Layout<TP<2>, CFG<2>, OnCpu>>(e2e, 3.0f, false);
  for (std::size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(same_bits(cfg2.latents[i], serial.latents[0]));
    CHECK(same_bits(cfg2.image[i], serial.image[0]));
  }
  for (std::size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(same_bits(tp2cfg2.latents[i], tp2.latents[i % 2]));
  }
}

TEST_CASE("Flux2Pipeline klein: one branch when guidance <= 1 or the model is distilled, as the reference") {
  auto g = goldens();
  using L = Layout<OnCpu>;
  const auto plain = run<L>(e2e, 1.0f, false);
  CHECK(rel_err(plain.latents[0], g.read("nocfg_final_latents")) < 1e-4);
  CHECK(rel_err(plain.image[0], g.read("nocfg_image")) < 1e-4);
  // distilled: guidance 3 is ignored (klein has no guidance embedding), the same single branch
  const auto distilled = run<L>(distilled_copy(), 3.0f, false);
  CHECK(same_bits(distilled.latents[0], plain.latents[0]));
  Flux2Pipeline<L> p;
  p.variant = Flux2Variant::klein;
  CHECK(p.true_cfg(3.0f));
  CHECK_FALSE(p.true_cfg(1.0f));
  p.is_distilled = true;
  CHECK_FALSE(p.true_cfg(3.0f));
}

TEST_CASE("Flux2Pipeline klein: bad input is a clear error") {
  using L2 = Layout<CFG<2>, OnCpu>;
  CHECK_THROWS_WITH_AS(run<L2>(distilled_copy(), 3.0f, false),
                       doctest::Contains("CFG<2> needs 2 guidance branches but this run has 1 (the klein model is distilled"),
                       Error);
  CHECK_THROWS_WITH_AS(run<L2>(e2e, 1.0f, false), doctest::Contains("guidance <= 1 turns true CFG off"), Error);
  // a klein folder with a Mistral text encoder (the dev folder's) is named as such
  const fs::path dir = fs::temp_directory_path() / "pdiff_flux2_klein_wrong_encoder";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* part : {"transformer", "vae", "tokenizer", "scheduler"})
    fs::create_directory_symlink(fs::absolute(e2e / part), dir / part);
  fs::create_directory_symlink(fs::absolute(e2e / "../../dev/e2e/text_encoder"), dir / "text_encoder");
  fs::copy_file(e2e / "model_index.json", dir / "model_index.json");
  using L = Layout<OnCpu>;
  CHECK_THROWS_WITH_AS(run_ranks<L>([&](auto& rank) { return Flux2Pipeline<L>::load(rank, dir), Tensor<float>(); }),
                       doctest::Contains("Flux2KleinPipeline folder needs a Qwen3"), Error);
}
