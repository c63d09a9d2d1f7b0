// pdiff/io/token_decoder.hpp — the "decoder" of a tokenizer.json: tokens back to text, as the HF
// tokenizers library does it.
//
// | type           | effect on the token list                                                      |
// |----------------|-------------------------------------------------------------------------------|
// | null           | none (tokens are joined)                                                      |
// | Sequence       | each decoder in turn                                                          |
// | ByteLevel      | byte-level characters → bytes, joined; invalid UTF-8 → U+FFFD (Rust's lossy);  |
// |                | a token with a character outside the byte map (a special token) stays as is   |
// | ByteFallback   | runs of <0xXX> tokens → their bytes; an invalid run → one U+FFFD per byte     |
// | Fuse           | all tokens joined into one                                                    |
// | Replace        | pattern → content in every token                                              |
// | Strip          | up to `start` leading and `stop` trailing `content` removed from every token  |
// Any other type is an Error naming the field.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/pretokenize.hpp"
#include "pdiff/io/unicode.hpp"

namespace pdiff::tok {

struct Decoder {
  enum Kind { None, Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip } kind = None;
  std::vector<Decoder> steps;
  Pattern pattern;
  std::string content;
  std::size_t start = 0, stop = 0;

  static Decoder from_json(const json& j, const std::string& where) {
    Decoder d;
    if (j.is_null()) return d;
    std::string t = type_of(j, where);
    if (t == "Sequence") {
      d.kind = Sequence;
      PDIFF_CHECK(j.contains("decoders") && j["decoders"].is_array(), where, ".decoders: must be an array");
      for (std::size_t i = 0; i < j["decoders"].size(); ++i)
        d.steps.push_back(from_json(j["decoders"][i], detail::cat(where, ".decoders[", i, "]")));
    } else if (t == "ByteLevel") {
      d.kind = ByteLevel;
    } else if (t == "ByteFallback") {
      d.kind = ByteFallback;
    } else if (t == "Fuse") {
      d.kind = Fuse;
    } else if (t == "Replace") {
      d.kind = Replace;
      PDIFF_CHECK(j.contains("pattern"), where, ".pattern: missing");
      d.pattern = Pattern::from_json(j["pattern"], where + ".pattern");
      d.content = field<std::string>(j, "content", where, "");
    } else if (t == "Strip") {
      d.kind = Strip;
      d.content = field<std::string>(j, "content", where, " ");
      d.start = field<std::size_t>(j, "start", where, 0);
      d.stop = field<std::size_t>(j, "stop", where, 0);
    } else {
      throw Error(detail::cat(where, ": decoder type '", t,
                              "' is not supported (Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip are)"));
    }
    return d;
  }

  // tokens → tokens; the caller joins the result
  void apply(std::vector<std::string>& toks) const {
    switch (kind) {
      case None: return;
      case Sequence:
        for (const auto& st : steps) st.apply(toks);
        return;
      case ByteLevel: {
        const auto& map = ByteLevelMap::get();
        std::string bytes;
        for (const auto& t : toks) {
          auto d = unicode::decode_utf8(t, "token");
          std::string mapped;
          bool ok = true;
          for (char32_t c : d.cps) {
            if (c >= 512 || map.to_byte[c] < 0) {
              ok = false;
              break;
            }
            mapped += char(map.to_byte[c]);
          }
          bytes += ok ? mapped : t;  // a token with a character outside the map stays as it is
        }
        toks = {unicode::utf8_lossy(bytes)};
        return;
      }
      case ByteFallback: {
        std::vector<std::string> out;
        std::string run;  // consecutive <0xXX> bytes
        std::size_t run_n = 0;
        auto flush = [&] {
          if (run_n == 0) return;
          if (unicode::utf8_lossy(run) == run) out.push_back(run);
          else
            for (std::size_t i = 0; i < run_n; ++i) out.push_back("\xEF\xBF\xBD");
          run.clear(), run_n = 0;
        };
        for (const auto& t : toks) {
          int b = byte_token(t);
          if (b >= 0) run += char(b), ++run_n;
          else flush(), out.push_back(t);
        }
        flush();
        toks = std::move(out);
        return;
      }
      case Fuse: {
        std::string all;
        for (const auto& t : toks) all += t;
        toks = {all};
        return;
      }
      case Replace:
        for (auto& t : toks) t = pattern.replace_all(t, content);
        return;
      case Strip:
        for (auto& t : toks) {
          std::size_t b = 0, e = t.size(), n = 0;
          while (n < start && !content.empty() && t.compare(b, content.size(), content) == 0 && b < e)
            b += content.size(), ++n;
          n = 0;
          while (n < stop && !content.empty() && e >= b + content.size() &&
                 t.compare(e - content.size(), content.size(), content) == 0)
            e -= content.size(), ++n;
          t = t.substr(b, e - b);
        }
        return;
    }
  }

  // "<0x41>" → 0x41, anything else → -1
  static int byte_token(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
    int v = 0;
    for (char c : t.substr(3, 2)) {
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }
};

}  // namespace pdiff::tok
