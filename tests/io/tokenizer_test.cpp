// Tokenizer: ids equal the tokenizers library's for every golden string (Tekken-style byte-level BPE and a
// v1-style byte_fallback BPE), decode(encode(s)) == s, the FLUX.2 chat formatting + padding equal
// transformers' apply_chat_template, and every malformed file is a pdiff::Error naming the field.
// Goldens: tests/golden/mistral3_tiny/tokenizer*/ made by tools/make_tokenizer_goldens.py, and
// tests/golden/qwen2_nfc_tokenizer/ (an NFC normalizer) made by tools/make_nfc_tokenizer_goldens.py.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "pdiff/io/chat_prompt.hpp"
#include "pdiff/io/tokenizer.hpp"

using namespace pdiff;
namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<std::int32_t>;

namespace {
const fs::path root = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/mistral3_tiny";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return json::parse(in);
}
const json& goldens() {
  static const json g = read_json(root / "tokenizer/goldens.json");
  return g;
}
const Tokenizer& tekken() {
  static const Tokenizer t = Tokenizer::load(root / "tokenizer");
  return t;
}
// The message of the pdiff::Error `f` throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
// A small BPE tokenizer.json; `model` replaces the model object.
std::string tiny_json(const json& model) {
  json j = {{"version", "1.0"}, {"added_tokens", json::array()}, {"normalizer", nullptr},
            {"pre_tokenizer", nullptr}, {"post_processor", nullptr}, {"decoder", nullptr}, {"model", model}};
  return j.dump();
}
json tiny_model() {
  return {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}}},
          {"merges", json::array({json::array({"a", "b"})})}};
}
}  // namespace

TEST_CASE("Tekken-style tokenizer: ids equal the reference for every golden string") {
  const auto& t = tekken();
  CHECK(t.vocab_size() == 512);
  int matched = 0;
  for (const auto& c : goldens()["cases"]) {
    auto s = c["text"].get<std::string>();
    CAPTURE(s);
    CHECK(t.encode(s) == c["ids"].get<Ids>());
    CHECK(t.encode(s, false) == c["ids_no_special"].get<Ids>());
    CHECK(t.decode(t.encode(s, false)) == s);
    matched += t.encode(s) == c["ids"].get<Ids>() && t.encode(s, false) == c["ids_no_special"].get<Ids>();
  }
  CHECK(matched == int(goldens()["cases"].size()));
  MESSAGE("Tekken-style golden strings matched: ", matched, "/", goldens()["cases"].size());
}

TEST_CASE("Qwen2-style tokenizer (normalizer NFC, Qwen2 Split regex, ByteLevel): ids equal the reference") {
  const fs::path dir = fs::path(PDIFF_SOURCE_DIR) / "tests/golden/qwen2_nfc_tokenizer";
  auto t = Tokenizer::load(dir / "tokenizer.json");
  auto g = read_json(dir / "goldens.json");
  int matched = 0, changed = 0;
  for (const auto& c : g["cases"]) {
    auto s = c["text"].get<std::string>();
    CAPTURE(s);
    auto ids = t.encode(s);
    CHECK(ids == c["ids"].get<Ids>());
    CHECK(t.pre_tokenize(s) == c["pieces"].get<std::vector<std::string>>());
    CHECK(t.decode(ids) == c["nfc"].get<std::string>());
    matched += ids == c["ids"].get<Ids>();
    changed += c["nfc"] != c["text"];
  }
  CHECK(matched == int(g["cases"].size()));
  CHECK(changed >= 15);
  MESSAGE("NFC (Qwen2-style) golden strings matched: ", matched, "/", g["cases"].size(), " (", changed,
          " changed by NFC)");
}

TEST_CASE("the FLUX.2-klein (Qwen3-style) tokenizer with the NFC normalizer real Qwen files have") {
  // the golden file normalises with NFC as Qwen's do; its prompts are NFC, so without the normalizer
  // the ids are the same, and decomposed input is composed first
  std::ifstream in(fs::path(PDIFF_SOURCE_DIR) / "tests/golden/flux2_tiny/klein/e2e/tokenizer/tokenizer.json");
  REQUIRE(in);
  json j = json::parse(in);
  REQUIRE(j["normalizer"]["type"] == "NFC");
  auto nfc = Tokenizer::from_json(j.dump(), "klein");
  j["normalizer"] = nullptr;
  auto plain = Tokenizer::from_json(j.dump(), "klein without NFC");
  for (std::string s : {"A cozy cabin in snowy mountains at night", "caf\u00e9 \u00c5ngstr\u00f6m \uac01 \U0001F642", ""})
    CHECK(nfc.encode(s) == plain.encode(s));
  CHECK(nfc.encode("cafe\u0301 \u212bngstro\u0308m \u1100\u1161\u11a8") == plain.encode("caf\u00e9 \u00c5ngstr\u00f6m \uac01"));
}

TEST_CASE("pre-tokenization (the file's Llama-3 style regex) and fix_mistral_regex (the Tekken regex) equal the reference") {
  auto fixed = Tokenizer::load(root / "tokenizer");
  fixed.fix_mistral_regex();
  int matched = 0;
  for (const auto& c : goldens()["cases"]) {
    auto s = c["text"].get<std::string>();
    CAPTURE(s);
    CHECK(tekken().pre_tokenize(s) == c["pieces"].get<std::vector<std::string>>());
    CHECK(fixed.pre_tokenize(s) == c["pieces_fixed"].get<std::vector<std::string>>());
    CHECK(fixed.encode(s) == c["ids_fixed"].get<Ids>());
    matched += fixed.encode(s) == c["ids_fixed"].get<Ids>();
  }
  MESSAGE("fix_mistral_regex golden strings matched: ", matched, "/", goldens()["cases"].size());
}

TEST_CASE("v1-style tokenizer (normalizer, byte_fallback, legacy \"a b\" merges): ids and decode equal the reference") {
  auto t = Tokenizer::load(root / "tokenizer_v1/tokenizer.json");
  int matched = 0;
  for (const auto& c : goldens()["v1_cases"]) {
    auto s = c["text"].get<std::string>();
    CAPTURE(s);
    auto ids = t.encode(s);
    CHECK(ids == c["ids"].get<Ids>());
    CHECK(t.encode(s, false) == c["ids_no_special"].get<Ids>());
    CHECK(t.decode(ids, /*skip_special_tokens=*/true) == c["decoded"].get<std::string>());
    matched += ids == c["ids"].get<Ids>();
  }
  CHECK(matched == int(goldens()["v1_cases"].size()));
  MESSAGE("v1-style golden strings matched: ", matched, "/", goldens()["v1_cases"].size());
}

TEST_CASE("decode(encode(s)) == s for random strings of words, digits, whitespace, unicode and special tokens") {
  const auto& t = tekken();
  const std::vector<std::string> parts = {"a", "Z", "the ", "  ", "\n", "\r\n", "\t", "7", "42", "é", "東京",
                                          "🙂", "ﬁ", "\xcc\x81", ".", "?!", "/", "[INST]", "<s>", "</s>",
                                          "[/SYSTEM_PROMPT]", "<pad>", "[", "INST]", "Über", "ǅ", "\u00a0", "\u3000"};
  std::mt19937 rng(7);
  for (int k = 0; k < 300; ++k) {
    std::string s;
    int n = int(rng() % 12);
    for (int i = 0; i < n; ++i) s += parts[rng() % parts.size()];
    CAPTURE(s);
    CHECK(t.decode(t.encode(s, false)) == s);
    auto with = t.encode(s);
    REQUIRE(!with.empty());
    CHECK(with[0] == 1);  // the post-processor's <s>
  }
}

TEST_CASE("FLUX.2 chat formatting and padding equal transformers' apply_chat_template") {
  const auto& t = tekken();
  CHECK(goldens()["system_message"].get<std::string>() == flux2_system_message);
  for (const auto& c : goldens()["chat"]) {
    auto prompt = c["prompt"].get<std::string>();
    auto max_length = c["max_length"].get<std::size_t>();
    CAPTURE(max_length);
    CHECK(flux2_chat_text(prompt) == c["formatted"].get<std::string>());
    for (auto side : {PadSide::right, PadSide::left}) {
      std::string s = side == PadSide::right ? "right" : "left";
      PadOptions o;
      o.max_length = max_length;
      o.padding_side = side;
      auto p = encode_flux2_prompt(t, prompt, o);
      CHECK(p.ids == c["ids_" + s].get<Ids>());
      CHECK(p.mask == c["mask_" + s].get<Ids>());
      CHECK(p.length == c["unpadded_length"].get<std::size_t>());
    }
  }
  // the tokenizer's own side (tokenizer_config.json: right) is the default
  CHECK(t.padding_side() == PadSide::right);
  CHECK(encode_flux2_prompt(t, goldens()["chat"][0]["prompt"].get<std::string>()).ids ==
        goldens()["chat"][0]["ids_right"].get<Ids>());
  // "[IMG]" is removed from the prompt, as format_input does
  CHECK(flux2_chat_text("a [IMG]cat[IMG]") == flux2_chat_text("a cat"));
}

TEST_CASE("a prompt longer than max_length: truncated like the reference, an Error naming both lengths if strict") {
  const auto& t = tekken();
  const auto& c = goldens()["chat"][3];
  auto prompt = c["prompt"].get<std::string>();
  PadOptions o;
  auto p = encode_flux2_prompt(t, prompt, o);
  CHECK(p.ids.size() == 512);
  CHECK(p.ids == c["ids_right"].get<Ids>());
  o.strict = true;
  auto msg = error_of([&] { encode_flux2_prompt(t, prompt, o); });
  CHECK(msg.find(std::to_string(c["unpadded_length"].get<int>()) + " tokens") != std::string::npos);
  CHECK(msg.find("max_length 512") != std::string::npos);
  // a prompt that fits is fine in strict mode
  CHECK(encode_flux2_prompt(t, "short", o).ids.size() == 512);
}

TEST_CASE("merges as \"a b\" strings and as [a, b] pairs give the same tokenizer") {
  std::ifstream in(root / "tokenizer/tokenizer.json");
  json j = json::parse(in);
  json legacy = j;
  for (auto& m : legacy["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  auto a = Tokenizer::from_json(j.dump(), "pairs");
  auto b = Tokenizer::from_json(legacy.dump(), "strings");
  for (const auto& c : goldens()["cases"]) {
    auto s = c["text"].get<std::string>();
    CHECK(a.encode(s) == b.encode(s));
  }
}

TEST_CASE("ignore_merges: a word that is a vocab token is taken whole") {
  json m = tiny_model();
  CHECK(Tokenizer::from_json(tiny_json(m), "t").encode("abc") == Ids{3, 2});
  m["ignore_merges"] = true;
  CHECK(Tokenizer::from_json(tiny_json(m), "t").encode("abc") == Ids{4});
  // without byte_fallback or unk_token an unknown character is dropped, as the reference does
  CHECK(Tokenizer::from_json(tiny_json(m), "t").encode("axc") == Ids{0, 2});
}

TEST_CASE("malformed tokenizer.json: a pdiff::Error naming the file and field, never a crash") {
  auto has = [](const std::string& msg, const std::string& part) {
    CAPTURE(msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  has(error_of([] { Tokenizer::from_json("{not json", "bad.json"); }), "bad.json: not valid JSON");
  has(error_of([] { Tokenizer::from_json("[1, 2]", "arr.json"); }), "arr.json: must be a JSON object");
  // nested 100k deep: refused before a tree exists (copying one would overflow the stack)
  has(error_of([] { Tokenizer::from_json("{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}", "deep.json"); }),
      "deep.json: refused: in 'x'.[].[].[]... (126 steps), nesting is deeper than 127 levels");
  has(error_of([] { Tokenizer::from_json(R"({"version": "1.0"})", "nomodel.json"); }), "nomodel.json: \"model\"");
  json m = tiny_model();
  m["type"] = "WordPiece";
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "wp.json"); }), "wp.json.model.type: 'WordPiece'");
  m = tiny_model();
  m["merges"].push_back(json::array({"a", "q"}));
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "m.json"); }), "m.json.model.merges[1]: 'q' is not in model.vocab");
  m = tiny_model();
  m["merges"].push_back("b c");
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "m.json"); }), "m.json.model.merges[1]: the merged token 'bc'");
  m = tiny_model();
  m["merges"].push_back("a b c");
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "m.json"); }), "m.json.model.merges[1]");
  m = tiny_model();
  m["vocab"]["a"] = "zero";
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "v.json"); }), "v.json.model.vocab[\"a\"]");
  m = tiny_model();
  m["vocab"]["a"] = -3;
  has(error_of([&] { Tokenizer::from_json(tiny_json(m), "v.json"); }), "outside [0, 2^24)");
  json j = json::parse(tiny_json(tiny_model()));
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
  has(error_of([&] { Tokenizer::from_json(j.dump(), "re.json"); }), "re.json.pre_tokenizer.pattern.Regex");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\p{Han}"}}}, {"behavior", "Isolated"}};
  has(error_of([&] { Tokenizer::from_json(j.dump(), "re.json"); }), "unsupported \\p{...} property");
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  has(error_of([&] { Tokenizer::from_json(j.dump(), "pt.json"); }), "pt.json.pre_tokenizer: pre_tokenizer type 'Metaspace'");
  j["pre_tokenizer"] = nullptr;
  j["normalizer"] = {{"type", "Lowercase"}};
  has(error_of([&] { Tokenizer::from_json(j.dump(), "n.json"); }), "n.json.normalizer: normalizer type 'Lowercase'");
  j["normalizer"] = nullptr;
  j["added_tokens"] = json::array({{{"id", 9}}});
  has(error_of([&] { Tokenizer::from_json(j.dump(), "at.json"); }), "at.json.added_tokens[0]");
  has(error_of([] { Tokenizer::load("/nonexistent/tokenizer.json"); }), "cannot read '/nonexistent/tokenizer.json'");
}

TEST_CASE("bad input: invalid UTF-8 and unknown ids are Errors") {
  const auto& t = tekken();
  auto msg = error_of([&] { t.encode("ok\xff"); });
  CHECK(msg.find("invalid UTF-8 at byte 2") != std::string::npos);
  CHECK(error_of([&] { t.decode({5000}); }).find("id 5000 is not in the vocabulary") != std::string::npos);
  // invalid UTF-8 produced by decoding a lone byte token is repaired with U+FFFD, as the reference
  auto lone = t.token_to_id("\xc3\x83");  // byte-level character of byte 0xC3
  REQUIRE(lone >= 0);
  CHECK(t.decode({lone}) == "\xEF\xBF\xBD");
}

TEST_CASE("UnicodeRegex: Oniguruma semantics on the features tokenizer patterns use") {
  auto all = [](const std::string& pat, const std::string& text) {
    UnicodeRegex re(pat, "test");
    auto d = unicode::decode_utf8(text, "text");
    std::vector<std::string> out;
    for (auto [b, e] : re.find_all(d.cps)) out.push_back(text.substr(d.offsets[b], d.offsets[e] - d.offsets[b]));
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(all(R"(\p{Lu}\p{Ll}+)", "HelloWorld ÜberCafé") == V{"Hello", "World", "Über", "Café"});
  CHECK(all(R"(\p{N})", "a1٣x") == V{"1", "٣"});
  CHECK(all(R"(\s+(?!\S)|\s+)", "a   b ") == V{"  ", " ", " "});
  CHECK(all(R"(a+?)", "aaa") == V{"a", "a", "a"});
  CHECK(all(R"(a++a)", "aaaa").empty());   // possessive: gives nothing back
  CHECK(all(R"((?>a+)b|a)", "aab") == V{"aab"});
  CHECK(all(R"(x{2,3})", "xxxxxxx") == V{"xxx", "xxx"});
  CHECK(all(R"([^\s\p{L}]+)", "ab,;  12") == V{",;", "12"});
  CHECK(all(R"([a-c\d]+)", "abz19") == V{"ab", "19"});
  CHECK(all(R"(\P{L}+)", "ab12") == V{"12"});
  CHECK(all(R"(\x41\u00e9)", "Aé") == V{"Aé"});
  CHECK(all(R"(^a|b$)", "aab") == V{"a", "b"});
  CHECK(all(R"((?i:'s|'ll)|x)", "'S 'Ll 'ſ X x") == V{"'S", "'Ll", "'ſ", "x"});
  CHECK(all(R"(a(?i)b(?-i)c)", "aBc aBC") == V{"aBc"});
  CHECK_THROWS_AS(UnicodeRegex("(a*)*", "t"), Error);
  CHECK_THROWS_AS(UnicodeRegex("(?<=a)b", "t"), Error);
  CHECK_THROWS_AS(UnicodeRegex("[a", "t"), Error);
  CHECK_THROWS_AS(UnicodeRegex("a)", "t"), Error);
  // catastrophic backtracking ends in an Error, not a hang
  UnicodeRegex slow("(a|a)+b", "slow");
  slow.step_budget = 100000;
  auto d = unicode::decode_utf8(std::string(40, 'a'), "t");
  CHECK_THROWS_AS(slow.find_all(d.cps), Error);
}

TEST_CASE("unicode: categories and UTF-8 repair") {
  using C = unicode::Category;
  CHECK(unicode::category('A') == C::Lu);
  CHECK(unicode::category(U'東') == C::Lo);
  CHECK(unicode::category(U'ǅ') == C::Lt);
  CHECK(unicode::category(0x301) == C::Mn);
  CHECK(unicode::category(U'٣') == C::Nd);
  CHECK(unicode::category(0x1F642) == C::So);
  CHECK(unicode::category(0x10FFFF) == C::Cn);
  CHECK(unicode::utf8_lossy("a\xe6\x9d") == "a\xEF\xBF\xBD");                 // truncated sequence: one U+FFFD
  CHECK(unicode::utf8_lossy("\xff\xfe") == "\xEF\xBF\xBD\xEF\xBF\xBD");       // two bad bytes: two
  CHECK(unicode::utf8_lossy("\xed\xa0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}
