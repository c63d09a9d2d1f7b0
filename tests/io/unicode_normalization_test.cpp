// Unicode normalization: NFC/NFD/NFKC/NFKD equal the tokenizers library's normalizers (and Python's
// unicodedata.normalize, Unicode 14) on 400 random strings of combining marks, compatibility characters and
// Hangul; on characters added after Unicode 9.0 they keep the Unicode 9.0 behaviour of tokenizers.
// Goldens: tests/golden/qwen2_nfc_tokenizer/normalization.json made by tools/make_nfc_tokenizer_goldens.py.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pdiff/io/unicode_normalization.hpp"

using namespace pdiff;
using unicode::NormalForm;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const json& goldens() {
  static const json g = [] {
    std::ifstream in(fs::path(PDIFF_SOURCE_DIR) / "tests/golden/qwen2_nfc_tokenizer/normalization.json");
    REQUIRE(in);
    return json::parse(in);
  }();
  return g;
}
std::string norm(std::string_view s, NormalForm f) { return unicode::normalize_utf8(s, f, "test"); }
// Every form of every string in `cases` equals the golden; returns how many strings matched in all four.
int check_all(const json& cases) {
  int matched = 0;
  for (const auto& c : cases) {
    auto s = c["text"].get<std::string>();
    CAPTURE(s);
    bool ok = true;
    for (auto [key, form] : {std::pair{"nfc", NormalForm::NFC}, std::pair{"nfd", NormalForm::NFD},
                             std::pair{"nfkc", NormalForm::NFKC}, std::pair{"nfkd", NormalForm::NFKD}}) {
      CAPTURE(key);
      auto got = norm(s, form);
      CHECK(got == c[key].get<std::string>());
      ok = ok && got == c[key].get<std::string>();
    }
    matched += ok;
  }
  return matched;
}
}  // namespace

TEST_CASE("NFC/NFD/NFKC/NFKD equal tokenizers (= unicodedata) on random strings with combining marks") {
  const auto& g = goldens();
  CHECK(std::string(unicode::detail::normalization_unicode_version) == g["versions"]["tokenizers_unicode"]);
  int matched = check_all(g["strings"]);
  CHECK(matched == int(g["strings"].size()));
  MESSAGE("normalization strings matched in all 4 forms: ", matched, "/", g["strings"].size());
}

TEST_CASE("characters added after Unicode 9.0 behave as in tokenizers (class 0, no decomposition)") {
  const auto& g = goldens();
  CHECK(check_all(g["post9"]) == int(g["post9"].size()));
  CHECK(unicode::combining_class(0x0898) == 0);  // Unicode 14.0: class 230
  CHECK(unicode::combining_class(0x0316) == 220);
}

TEST_CASE("the textbook cases") {
  CHECK(norm("cafe\u0301", NormalForm::NFC) == "caf\u00e9");
  CHECK(norm("caf\u00e9", NormalForm::NFD) == "cafe\u0301");
  CHECK(norm("\u212b", NormalForm::NFC) == "\u00c5");                 // singleton
  CHECK(norm("\u1100\u1161\u11a8", NormalForm::NFC) == "\uac01");     // Hangul L V T
  CHECK(norm("\uac01", NormalForm::NFD) == "\u1100\u1161\u11a8");
  CHECK(norm("\u1e9b\u0323", NormalForm::NFC) == "\u1e9b\u0323");     // UAX #15's example
  CHECK(norm("\u1e9b\u0323", NormalForm::NFKC) == "\u1e69");
  CHECK(norm("\u1e9b\u0323", NormalForm::NFD) == "\u017f\u0323\u0307");
  CHECK(norm("a\u0302\u0323", NormalForm::NFC) == "\u1ead");          // marks reordered, then composed
  CHECK(norm("\u0958", NormalForm::NFC) == "\u0915\u093c");           // composition exclusion
  CHECK(norm("\ufb01", NormalForm::NFC) == "\ufb01");
  CHECK(norm("\ufb01", NormalForm::NFKC) == "fi");
  CHECK(norm("plain ascii", NormalForm::NFD) == "plain ascii");
  CHECK(norm("", NormalForm::NFC).empty());
  CHECK_THROWS_AS(norm("bad \xff", NormalForm::NFC), Error);
}
