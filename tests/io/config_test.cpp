// Config loading as an attacker would try it: every finding of issue 12's config fuzzing is a clear
// pdiff::Error before any work. JsonConfig's integer fields (range, integrality), nesting depth, the
// model configs' divisions and shifts (AutoencoderKL, Mistral, FLUX.2).
#include <doctest/doctest.h>

#include <string>

#include "pdiff/io/config.hpp"
#include "pdiff/models/autoencoder_kl/config.hpp"
#include "pdiff/models/flux2/config.hpp"
#include "pdiff/models/mistral/config.hpp"

using namespace pdiff;
using doctest::Contains;

namespace {
std::string nested(int depth) { return std::string(std::size_t(depth), '[') + std::string(std::size_t(depth), ']'); }
const char* mistral_ok = R"({"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2)";
}  // namespace

TEST_CASE("JsonConfig: integer fields take integral values in their type's range") {
  auto c = JsonConfig::parse(R"({"a": 7, "b": 32.0, "c": 1.5, "d": 1e300, "e": 1e10, "f": -1, "g": 18446744073709551615,
                                  "h": [1, 2.0, 3], "i": [1, 1e10], "j": "x", "k": -9223372036854775808})",
                             "t.json");
  CHECK(c.get<int>("a") == 7);
  CHECK(c.get<std::int64_t>("b") == 32);  // 32.0 is an integer
  CHECK_THROWS_WITH_AS(c.get<std::int64_t>("c"), Contains("config t.json: 'c' is 1.5, not an integer in the range"), Error);
  CHECK_THROWS_WITH_AS(c.get<std::int64_t>("d"), Contains("'d' is 1e+300, not an integer in the range"), Error);
  CHECK(c.get<std::int64_t>("e") == 10'000'000'000);
  CHECK_THROWS_WITH_AS(c.get<int>("e"), Contains("'e' is 10000000000.0, not an integer in the range of its type"), Error);
  CHECK_THROWS_WITH_AS(c.get<std::uint32_t>("f"), Contains("'f' is -1, outside the range of its type"), Error);
  CHECK_THROWS_WITH_AS(c.get<std::int64_t>("g"), Contains("'g' is 18446744073709551615, above the largest value"), Error);
  CHECK(c.get<std::vector<int>>("h") == std::vector<int>{1, 2, 3});
  CHECK_THROWS_WITH_AS(c.get<std::vector<int>>("i"), Contains("'i'[1] is 10000000000.0, not an integer"), Error);
  CHECK_THROWS_WITH_AS(c.get<int>("j"), Contains("'j' must be an integer, not string"), Error);
  CHECK(c.get<std::int64_t>("k") == INT64_MIN);
  CHECK(c.get<double>("d") == 1e300);  // floats stay floats
  // 2^63 as a double is just beyond int64
  CHECK_THROWS_AS(JsonConfig::parse(R"({"x": 9223372036854775808.0})").get<std::int64_t>("x"), Error);
}

TEST_CASE("JsonConfig: nesting is limited before the tree is built, and sub() shares the tree") {
  CHECK_THROWS_WITH_AS(JsonConfig::parse("{\"x\": " + nested(100'000) + "}", "deep.json"),
                       Contains("config: 'deep.json' is refused: in 'x'.[].[].[]... (126 steps), nesting is deeper than "
                                "127 levels"),
                       Error);
  CHECK(JsonConfig::parse("{\"x\": " + nested(120) + "}").has("x"));
  CHECK_THROWS_WITH_AS(JsonConfig::parse(std::string("{}\0{", 4), "nul.json"), Contains("has a NUL byte at offset 2"),
                       Error);
  auto root = JsonConfig::parse(R"({"text_config": {"a": {"b": 1}}})", "c.json");
  auto sub = root.sub("text_config").sub("a");
  CHECK(sub.get<int>("b") == 1);
  CHECK(sub.where() == "c.json.text_config.a");
  CHECK(&sub.json() == &root.json()["text_config"]["a"]);  // the same node, not a copy
}

TEST_CASE("MistralConfig: heads are checked before anything divides by them") {
  auto mistral = [](const std::string& extra) {
    return MistralConfig::from(JsonConfig::parse(std::string(mistral_ok) + extra + "}", "mistral.json"));
  };
  CHECK(mistral("").head_dim == 8);
  CHECK_THROWS_WITH_AS(mistral(R"(, "num_attention_heads": 0)"),
                       Contains("MistralConfig mistral.json: num_attention_heads (0) must be positive"), Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "num_key_value_heads": 0)"), Contains("num_key_value_heads (0) must be positive"),
                       Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "num_key_value_heads": 3)"), Contains("must be a multiple of num_key_value_heads (3)"),
                       Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "intermediate_size": -1)"), Contains("sizes must be positive"), Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "hidden_size": 1e300)"), Contains("'hidden_size' is 1e+300, not an integer"), Error);
  // a mistral3 config nested 100k arrays deep in an unrelated field: an error, not a stack overflow
  CHECK_THROWS_WITH_AS(MistralConfig::from(JsonConfig::parse(R"({"model_type": "mistral3", "vision_config": )" +
                                                            nested(100'000) + R"(, "text_config": {}})")),
                       Contains("nesting is deeper than 127 levels"), Error);
}

TEST_CASE("AutoencoderKLConfig: groups and levels are checked before division and shift") {
  auto vae = [](const std::string& body) { return AutoencoderKLConfig::from(JsonConfig::parse(body, "vae.json")); };
  CHECK(vae(R"({"block_out_channels": [32, 64], "norm_num_groups": 32, "sample_size": 64})").scale() == 2);
  CHECK_THROWS_WITH_AS(vae(R"({"norm_num_groups": 0})"),
                       Contains("AutoencoderKLConfig vae.json: norm_num_groups (0) must be positive"), Error);
  std::string levels65 = "[";
  for (int i = 0; i < 65; ++i) levels65 += (i ? ",32" : "32");
  CHECK_THROWS_WITH_AS(vae(R"({"block_out_channels": )" + levels65 + "]}"),
                       Contains("block_out_channels has 65 levels, more than 16"), Error);
  CHECK_THROWS_WITH_AS(vae(R"({"block_out_channels": [0, 32]})"), Contains("channels 0 must be positive"), Error);
  CHECK_THROWS_WITH_AS(vae(R"({"block_out_channels": [32, 64], "decoder_block_out_channels": [32, 48]})"),
                       Contains("channels 48 must be positive and divisible by norm_num_groups (32)"), Error);
  CHECK_THROWS_WITH_AS(vae(R"({"sample_size": 0})"), Contains("sample_size (0) must be positive"), Error);
  CHECK_THROWS_WITH_AS(vae(R"({"_class_name": "AutoencoderKLFlux2", "patch_size": [2, 0]})"),
                       Contains("patch_size entries must be positive"), Error);
}

TEST_CASE("Flux2Config: axes_dims_rope summed without overflow, sizes positive") {
  auto flux = [](const std::string& body) { return Flux2Config::from(JsonConfig::parse(body, "transformer.json")); };
  CHECK(flux(R"({"axes_dims_rope": [32, 32, 32, 32]})").attention_head_dim == 128);
  CHECK_THROWS_WITH_AS(flux(R"({"axes_dims_rope": [2147483647, 2147483647, 2, 128]})"),
                       Contains("axes_dims_rope entry 2147483647 must be positive, even and at most attention_head_dim"),
                       Error);
  CHECK_THROWS_WITH_AS(flux(R"({"axes_dims_rope": [-64, 64, 64, 64]})"), Contains("entry -64 must be positive"), Error);
  CHECK_THROWS_WITH_AS(flux(R"({"axes_dims_rope": [1e10]})"), Contains("'axes_dims_rope'[0] is 10000000000.0"), Error);
  CHECK_THROWS_WITH_AS(flux(R"({"axes_dims_rope": [32, 32, 32]})"), Contains("axes_dims_rope sum to 96"), Error);
  CHECK_THROWS_WITH_AS(flux(R"({"num_attention_heads": 0})"), Contains("sizes must be positive"), Error);
  CHECK_THROWS_WITH_AS(flux(R"({"mlp_ratio": 1e300})"), Contains("(at most 64)"), Error);
}

// fuzz_config: out_channels 35555555555555554 overflowed flux2_param_plan's D · out_channels (UBSan)
TEST_CASE("Flux2Config, MistralConfig: sizes are bounded so the plans' products fit in int64") {
  auto flux = [](const std::string& body) { return Flux2Config::from(JsonConfig::parse(body, "transformer.json")); };
  CHECK_THROWS_WITH_AS(flux(R"({"out_channels": 35555555555555554})"),
                       Contains("Flux2Config transformer.json: out_channels (35555555555555554) must be at most 1048576"),
                       Error);
  CHECK_THROWS_WITH_AS(flux(R"({"num_layers": 4097})"), Contains("layer counts (4097, 48) must be at most 4096"), Error);
  CHECK_THROWS_WITH_AS(flux(R"({"num_attention_heads": 16384})"),
                       Contains("inner_dim = num_attention_heads × attention_head_dim (16384 × 128) must be at most"),
                       Error);
  CHECK(flux(R"({"num_attention_heads": 8192, "joint_attention_dim": 1048576, "num_layers": 4096})").inner_dim() ==
        Flux2Config::max_size);
  auto mistral = [](const std::string& extra) {
    return MistralConfig::from(JsonConfig::parse(std::string(mistral_ok) + extra + "}", "mistral.json"));
  };
  CHECK_THROWS_WITH_AS(mistral(R"(, "vocab_size": 4611686018427387904)"),
                       Contains("MistralConfig mistral.json: vocab_size (4611686018427387904) must be at most 16777216"),
                       Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "intermediate_size": 1048577)"), Contains("intermediate_size (1048577) must be at most"),
                       Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "num_hidden_layers": 5000)"), Contains("num_hidden_layers (5000) must be at most 4096"),
                       Error);
  CHECK_THROWS_WITH_AS(mistral(R"(, "head_dim": 1048576)"),
                       Contains("num_attention_heads × head_dim (4 × 1048576) must be at most 1048576"), Error);
}
