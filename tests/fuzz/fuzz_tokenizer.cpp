// libFuzzer target: tokenizer.json loading, encode/decode and the FLUX.2 prompt path, and UnicodeRegex.
// The first input byte picks the mode; the rest is the payload:
//   0: payload is a tokenizer.json → load; if it loads, encode/decode a few fixed strings
//   1: payload is text → encode with the committed Tekken-style tokenizer; for valid UTF-8,
//      decode(encode(text)) must give the text back, and the padded FLUX.2 prompt must be 512 long
//   2: payload is "pattern\0text" → UnicodeRegex compile + find_all
// A pdiff::Error is the expected answer to bad input; anything else (another exception, a sanitizer
// report, a failed property) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pdiff/io/chat_prompt.hpp"
#include "pdiff/io/tokenizer.hpp"

namespace {
const pdiff::Tokenizer& tekken() {
  static const pdiff::Tokenizer t =
      pdiff::Tokenizer::load(std::string(PDIFF_SOURCE_DIR) + "/tests/golden/mistral3_tiny/tokenizer");
  return t;
}
bool valid_utf8(std::string_view s) {
  try {
    pdiff::unicode::decode_utf8(s, "fuzz");
    return true;
  } catch (const pdiff::Error&) {
    return false;
  }
}
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property failed: %s\n", what);
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 1 << 16) return 0;
  const int mode = data[0] % 3;
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (mode == 0) {
      auto t = pdiff::Tokenizer::from_json(payload, "fuzz.json");
      for (std::string_view s : {"", "Hello world 123", " \n\t x", "café 東京 🙂", "<s>[INST]a[/INST]"}) {
        auto ids = t.encode(s);
        try {
          t.decode(ids);
        } catch (const pdiff::Error&) {
        }
      }
    } else if (mode == 1) {
      const auto& t = tekken();
      bool ok = valid_utf8(payload);
      auto ids = t.encode(payload, false);
      require(ok, "encode accepted invalid UTF-8");
      require(t.decode(ids) == payload, "decode(encode(s)) == s");
      if (payload.size() < 256) {
        auto p = pdiff::encode_flux2_prompt(t, payload);
        require(p.ids.size() == 512 && p.mask.size() == 512, "padded prompt is 512 long");
      }
    } else {
      auto z = payload.find('\0');
      if (z == std::string_view::npos) return 0;
      pdiff::UnicodeRegex re(payload.substr(0, z), "fuzz regex");
      re.step_budget = 200'000;
      auto text = pdiff::unicode::decode_utf8(payload.substr(z + 1), "fuzz text");
      auto m = re.find_all(text.cps);
      std::size_t prev = 0;
      for (auto [b, e] : m) {
        require(b >= prev && b <= e && e <= text.cps.size(), "matches are ordered and inside the text");
        prev = e;
      }
    }
  } catch (const pdiff::Error&) {
  }
  return 0;
}
