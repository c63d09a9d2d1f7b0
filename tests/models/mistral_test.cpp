// The Mistral3 text encoder: serial equals transformers' goldens, TP<2>/TP<4> equal serial, greedy
// generation token-exact, sharded checkpoints, bad checkpoints, and the memory plan.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "../layers/harness.hpp"
#include "pdiff/io/safetensors_write.hpp"
#include "pdiff/models/mistral/plan.hpp"
#include "pdiff/models/mistral/text_encoder.hpp"

using namespace pdiff;
using namespace pdiff::test;
namespace fs = std::filesystem;

namespace {
const fs::path golden_dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/mistral3_tiny";
const fs::path dir = golden_dir / "text_encoder";

struct Golden {
  SafeTensors g = SafeTensors::open((golden_dir / "goldens.safetensors").string());
  Tensor<std::int64_t> ids(const char* side) const { return g.read_i64(std::string("ids_") + side); }
  Tensor<std::uint8_t> mask(const char* side) const {
    auto m = g.read_i64(std::string("mask_") + side);
    Tensor<std::uint8_t> out(m.shape());
    for (std::int64_t i = 0; i < m.numel(); ++i) out(i) = std::uint8_t(m(i));
    return out;
  }
};
constexpr int which[] = {1, 3, 4};

template <class L>
std::vector<Tensor<float>> encode_on(const Checkpoint& ck, const MistralConfig& cfg, const char* side) {
  Golden gd;
  auto ids = gd.ids(side);
  auto mask = gd.mask(side);
  return run_ranks<L>([&](auto& rank) {
    auto enc = MistralTextEncoder<Ctx<L>>::load(ck, cfg, rank.coords.tp);
    return enc.encode(rank, ids, mask, which);
  });
}
}  // namespace

TEST_CASE("serial Mistral3 encoder equals transformers (right and left padding)") {
  auto ck = Checkpoint::open(dir);
  auto cfg = MistralConfig::load(dir);
  CHECK(cfg.rope_theta == 1e6);  // read from text_config.rope_parameters
  Golden gd;
  for (const char* side : {"right", "left"}) {
    CAPTURE(side);
    auto got = encode_on<Layout<OnCpu>>(ck, cfg, side)[0];
    CHECK(rel_err(got, gd.g.read(std::string("hidden_") + side)) < 1e-4);
  }
}

TEST_CASE_TEMPLATE("TP-sharded encoder equals serial", L, Layout<TP<2>, OnCpu>, Layout<TP<4>, OnCpu>) {
  auto ck = Checkpoint::open(dir);
  auto cfg = MistralConfig::load(dir);
  auto serial = encode_on<Layout<OnCpu>>(ck, cfg, "left")[0];
  for (auto& y : encode_on<L>(ck, cfg, "left")) CHECK(rel_err(y, serial) < 1e-5);
}

TEST_CASE_TEMPLATE("generate(): greedy tokens equal transformers on every TP rank", L, Layout<OnCpu>,
                   Layout<TP<2>, OnCpu>, Layout<TP<4>, OnCpu>) {
  auto ck = Checkpoint::open(dir);
  auto cfg = MistralConfig::load(dir);
  Golden gd;
  auto prompt = gd.g.read_i64("prompt"), greedy = gd.g.read_i64("greedy");
  std::vector<std::int64_t> p(prompt.data(), prompt.data() + prompt.numel());
  std::vector<std::vector<std::int64_t>> got(L::world_size), sampled(L::world_size);
  launch<L>({.mode = Launch::threads}, [&](auto& rank) {
    auto enc = MistralTextEncoder<Ctx<L>>::load(ck, cfg, rank.coords.tp, -1, true);
    got[std::size_t(rank.index)] = enc.generate(rank, p, {.max_new_tokens = 10, .eos_token_id = 99999});
    sampled[std::size_t(rank.index)] = enc.generate(rank, p, {.max_new_tokens = 6, .temperature = 0.8f, .seed = 7});
  });
  std::vector<std::int64_t> want(greedy.data(), greedy.data() + greedy.numel());
  for (auto& g : got) CHECK(g == want);
  for (auto& s : sampled) CHECK(s == sampled[0]);
}

TEST_CASE("a sharded checkpoint loads the same as the single file; bad checkpoints are clear errors") {
  auto ck = Checkpoint::open(dir);
  auto cfg = MistralConfig::load(dir);
  fs::path tmp = fs::temp_directory_path() / ("pdiff_mistral_" + std::to_string(::getpid()));
  fs::create_directories(tmp / "sharded");
  std::map<std::string, Tensor<float>> a, b;
  nlohmann::json wm;
  int i = 0;
  for (auto& n : ck.names()) {
    const bool first = i++ % 2 == 0;
    (first ? a : b)[n] = ck.read(n);
    wm[n] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors((tmp / "sharded/model-00001-of-00002.safetensors").string(), a);
  write_safetensors((tmp / "sharded/model-00002-of-00002.safetensors").string(), b);
  std::ofstream(tmp / "sharded/model.safetensors.index.json") << nlohmann::json{{"weight_map", wm}}.dump();
  auto sharded = Checkpoint::open(tmp / "sharded");
  auto y1 = encode_on<Layout<TP<2>, OnCpu>>(ck, cfg, "right")[1];
  auto y2 = encode_on<Layout<TP<2>, OnCpu>>(sharded, cfg, "right")[1];
  CHECK(rel_err(y2, y1) == 0.0);

  // a missing tensor and a config that disagrees with the checkpoint
  a.erase("language_model.model.layers.2.mlp.up_proj.weight");
  b.erase("language_model.model.layers.2.mlp.up_proj.weight");
  fs::create_directories(tmp / "missing");
  std::map<std::string, Tensor<float>> all = a;
  all.insert(b.begin(), b.end());
  write_safetensors((tmp / "missing/model.safetensors").string(), all);
  auto broken = Checkpoint::open(tmp / "missing");
  CHECK_THROWS_WITH_AS(MistralTextEncoder<Ctx<Layout<OnCpu>>>::load(broken, cfg, 0),
                       doctest::Contains("has no tensor 'language_model.model.layers.2.mlp.up_proj.weight'"), Error);
  auto wrong = cfg;
  wrong.intermediate_size = 128;
  CHECK_THROWS_WITH_AS(MistralTextEncoder<Ctx<Layout<OnCpu>>>::load(ck, wrong, 0),
                       doctest::Contains("has shape (160, 64) but the config implies (128, 64)"), Error);
  auto bad_heads = cfg;
  bad_heads.num_attention_heads = 6;
  bad_heads.num_key_value_heads = 3;
  using Tp4Encoder = MistralTextEncoder<Ctx<Layout<TP<4>, OnCpu>>>;
  CHECK_THROWS_WITH_AS(Tp4Encoder::load(ck, bad_heads, 0),
                       doctest::Contains("num_heads (6) must be divisible"), Error);
  fs::remove_all(tmp);
}

TEST_CASE("memory plan: Mistral-Small-3.1-24B per rank at TP 1/2/4/8") {
  auto cfg = mistral_small_3_1_24b();
  const std::int64_t V = 131072, D = 5120, L = 40, H = 32, Hk = 8, hd = 128, I = 32768;
  for (std::int64_t tp : {1, 2, 4, 8}) {
    CAPTURE(tp);
    const std::int64_t kv = std::max<std::int64_t>(1, Hk / tp);
    const std::int64_t want =
        V / tp * D + L * (D * (H / tp * hd + 2 * kv * hd) + H / tp * hd * D + 3 * D * I / tp + 2 * D) + D;
    CHECK(mistral_param_plan(cfg, int(tp)).elements() == want);
  }
  const double gib = 1024.0 * 1024 * 1024;
  double t1 = double(mistral_param_plan(cfg, 1).bytes(2)), t4 = double(mistral_param_plan(cfg, 4).bytes(2));
  MESSAGE("Mistral-Small-3.1-24B text encoder, bf16 per rank: TP1 ", t1 / gib, " GiB, TP4 ", t4 / gib, " GiB");
  CHECK(t4 / t1 == doctest::Approx(0.25).epsilon(0.002));
  CHECK_THROWS_AS(mistral_param_plan(cfg, 3), Error);
}
