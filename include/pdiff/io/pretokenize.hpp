// pdiff/io/pretokenize.hpp — the text stages of a tokenizer.json before the model: normalizer and
// pre-tokenizer, as the HF tokenizers library defines them (the decoder is in io/token_decoder.hpp).
//
// | stage         | types handled                                 | anything else                        |
// |---------------|-----------------------------------------------|--------------------------------------|
// | Normalizer    | null, Sequence, Replace (String/Regex), Prepend, Strip, | Error naming the field and type |
// |               | NFC, NFD, NFKC, NFKD (Unicode 9.0 data, as tokenizers) |                                 |
// | PreTokenizer  | null, Sequence, Split (String/Regex pattern; behavior Isolated, Removed,     |
// |               | MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel (add_prefix_space, |
// |               | use_regex = the GPT-2 pattern)                                               |
// ByteLevel maps every byte to one printable character (GPT-2's bytes_to_unicode) so that BPE never meets
// an unknown byte.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/regex.hpp"
#include "pdiff/io/unicode.hpp"
#include "pdiff/io/unicode_normalization.hpp"

namespace pdiff::tok {

using nlohmann::json;

// ---- byte level -------------------------------------------------------------------------------
struct ByteLevelMap {
  std::array<char32_t, 256> to_char{};
  std::array<int, 512> to_byte{};  // code point (< 512) → byte, -1 if none
  ByteLevelMap() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[std::size_t(b)] = printable ? char32_t(b) : char32_t(256 + n++);
      to_byte[to_char[std::size_t(b)]] = b;
    }
  }
  static const ByteLevelMap& get() {
    static const ByteLevelMap m;
    return m;
  }
  std::string encode(std::string_view bytes) const {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) unicode::append_utf8(out, to_char[b]);
    return out;
  }
};

// The regex ByteLevel uses when use_regex is true (GPT-2's).
inline constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The Split regex transformers puts first in a Mistral tokenizer's pre-tokenizer when loaded with
// fix_mistral_regex=True (Mistral-Small-3.x tokenizer.json files ship a Llama-3 style pattern instead).
inline constexpr std::string_view mistral_tekken_pattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|)"
    R"(\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A Split/Replace pattern: a literal string or a regex.
struct Pattern {
  std::string literal;
  std::shared_ptr<const UnicodeRegex> regex;

  static Pattern from_json(const json& j, const std::string& where) {
    Pattern p;
    PDIFF_CHECK(j.is_object(), where, ": must be {\"String\": ...} or {\"Regex\": ...}");
    if (j.contains("Regex") && j["Regex"].is_string()) {
      p.regex = std::make_shared<UnicodeRegex>(j["Regex"].get<std::string>(), where + ".Regex");
    } else {
      PDIFF_CHECK(j.contains("String") && j["String"].is_string(), where,
                  ": must be {\"String\": ...} or {\"Regex\": ...}");
      p.literal = j["String"].get<std::string>();
    }
    return p;
  }
  // Matches in `s` as byte ranges, tagged: the pieces between and the matches, covering all of s.
  std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> split(std::string_view s) const {
    std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> out;
    std::size_t prev = 0;
    auto add = [&](std::size_t b, std::size_t e) {
      if (b != prev) out.push_back({{prev, b}, false});
      out.push_back({{b, e}, true});
      prev = e;
    };
    if (regex) {
      if (s.empty()) return {{{0, 0}, false}};
      auto d = unicode::decode_utf8(s, "tokenizer input");
      for (auto [b, e] : regex->find_all(d.cps)) add(d.offsets[b], d.offsets[e]);
    } else {
      if (literal.empty()) return {{{0, s.size()}, false}};
      for (std::size_t at = s.find(literal); at != std::string_view::npos; at = s.find(literal, prev))
        add(at, at + literal.size());
    }
    if (prev != s.size()) out.push_back({{prev, s.size()}, false});
    return out;
  }
  std::string replace_all(std::string_view s, std::string_view content) const {
    std::string out;
    for (const auto& [r, m] : split(s)) {
      if (m) out += content;
      else out += s.substr(r.first, r.second - r.first);
    }
    return out;
  }
};

inline std::string type_of(const json& j, const std::string& where) {
  PDIFF_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), where,
              ": must be an object with a string \"type\"");
  return j["type"].get<std::string>();
}
template <class T>
T field(const json& j, const char* key, const std::string& where, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    throw Error(detail::cat(where, ".", key, ": has the wrong JSON type"));
  }
}

// ---- normalizer --------------------------------------------------------------------------------
struct Normalizer {
  enum Kind { None, Sequence, Replace, Prepend, Strip, Unicode } kind = None;
  std::vector<Normalizer> steps;
  Pattern pattern;
  std::string content;
  bool left = false, right = false;
  unicode::NormalForm form = unicode::NormalForm::NFC;

  static Normalizer from_json(const json& j, const std::string& where) {
    Normalizer n;
    if (j.is_null()) return n;
    std::string t = type_of(j, where);
    if (t == "Sequence") {
      n.kind = Sequence;
      PDIFF_CHECK(j.contains("normalizers") && j["normalizers"].is_array(), where, ".normalizers: must be an array");
      for (std::size_t i = 0; i < j["normalizers"].size(); ++i)
        n.steps.push_back(from_json(j["normalizers"][i], detail::cat(where, ".normalizers[", i, "]")));
    } else if (t == "Replace") {
      n.kind = Replace;
      PDIFF_CHECK(j.contains("pattern"), where, ".pattern: missing");
      n.pattern = Pattern::from_json(j["pattern"], where + ".pattern");
      n.content = field<std::string>(j, "content", where, "");
    } else if (t == "Prepend") {
      n.kind = Prepend;
      n.content = field<std::string>(j, "prepend", where, "");
    } else if (t == "Strip") {
      n.kind = Strip;
      n.left = field<bool>(j, "strip_left", where, false);
      n.right = field<bool>(j, "strip_right", where, false);
    } else if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
      using F = unicode::NormalForm;
      n.kind = Unicode;
      n.form = t == "NFC" ? F::NFC : t == "NFD" ? F::NFD : t == "NFKC" ? F::NFKC : F::NFKD;
    } else {
      throw Error(detail::cat(where, ": normalizer type '", t,
                              "' is not supported (Sequence, Replace, Prepend, Strip, NFC, NFD, NFKC, NFKD are)"));
    }
    return n;
  }
  std::string apply(std::string s) const {
    switch (kind) {
      case None: return s;
      case Sequence:
        for (const auto& st : steps) s = st.apply(std::move(s));
        return s;
      case Replace: return pattern.replace_all(s, content);
      case Prepend: return s.empty() ? s : content + s;
      case Unicode: return unicode::normalize_utf8(s, form, "tokenizer input");
      case Strip: {
        auto d = unicode::decode_utf8(s, "tokenizer input");
        std::size_t b = 0, e = d.cps.size();
        while (left && b < e && unicode::is_white_space(d.cps[b])) ++b;
        while (right && e > b && unicode::is_white_space(d.cps[e - 1])) --e;
        return s.substr(d.offsets[b], d.offsets[e] - d.offsets[b]);
      }
    }
    return s;
  }
};

// ---- pre-tokenizer -----------------------------------------------------------------------------
struct PreTokenizer {
  enum Kind { None, Sequence, Split, ByteLevel } kind = None;
  enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous } behavior = Isolated;
  std::vector<PreTokenizer> steps;
  Pattern pattern;
  bool invert = false, add_prefix_space = false, use_regex = false;

  static PreTokenizer from_json(const json& j, const std::string& where) {
    PreTokenizer p;
    if (j.is_null()) return p;
    std::string t = type_of(j, where);
    if (t == "Sequence") {
      p.kind = Sequence;
      PDIFF_CHECK(j.contains("pretokenizers") && j["pretokenizers"].is_array(), where,
                  ".pretokenizers: must be an array");
      for (std::size_t i = 0; i < j["pretokenizers"].size(); ++i)
        p.steps.push_back(from_json(j["pretokenizers"][i], detail::cat(where, ".pretokenizers[", i, "]")));
    } else if (t == "Split") {
      p.kind = Split;
      PDIFF_CHECK(j.contains("pattern"), where, ".pattern: missing");
      p.pattern = Pattern::from_json(j["pattern"], where + ".pattern");
      p.invert = field<bool>(j, "invert", where, false);
      std::string b = field<std::string>(j, "behavior", where, "Isolated");
      static const std::pair<const char*, Behavior> names[] = {
          {"Removed", Removed}, {"Isolated", Isolated}, {"MergedWithPrevious", MergedWithPrevious},
          {"MergedWithNext", MergedWithNext}, {"Contiguous", Contiguous}};
      bool found = false;
      for (auto [n, v] : names)
        if (b == n) p.behavior = v, found = true;
      PDIFF_CHECK(found, where, ".behavior: '", b, "' is not a Split behavior");
    } else if (t == "ByteLevel") {
      p.kind = ByteLevel;
      p.add_prefix_space = field<bool>(j, "add_prefix_space", where, true);
      p.use_regex = field<bool>(j, "use_regex", where, true);
      if (p.use_regex) p.pattern.regex = std::make_shared<UnicodeRegex>(gpt2_pattern, where + " (GPT-2 regex)");
    } else {
      throw Error(detail::cat(where, ": pre_tokenizer type '", t,
                              "' is not supported (Sequence, Split, ByteLevel are)"));
    }
    return p;
  }

  // Split(regex, Isolated)
  static PreTokenizer split_isolated(std::string_view regex, const std::string& what) {
    PreTokenizer p;
    p.kind = Split;
    p.pattern.regex = std::make_shared<UnicodeRegex>(regex, what);
    return p;
  }

  // pieces → pieces (UTF-8; after ByteLevel, byte-level characters)
  void apply(std::vector<std::string>& pieces) const {
    switch (kind) {
      case None: return;
      case Sequence:
        for (const auto& st : steps) st.apply(pieces);
        return;
      case Split: {
        std::vector<std::string> out;
        for (const auto& p : pieces) split_piece(p, behavior, out);
        pieces = std::move(out);
        return;
      }
      case ByteLevel: {
        std::vector<std::string> out;
        for (auto& p : pieces) {
          if (add_prefix_space && (p.empty() || p[0] != ' ')) p.insert(p.begin(), ' ');
          if (use_regex) split_piece(p, Isolated, out);
          else out.push_back(std::move(p));
        }
        for (auto& p : out) p = ByteLevelMap::get().encode(p);
        pieces = std::move(out);
        return;
      }
    }
  }

 private:
  void split_piece(const std::string& s, Behavior how, std::vector<std::string>& out) const {
    auto m = pattern.split(s);
    if (invert)
      for (auto& x : m) x.second = !x.second;
    std::vector<std::pair<std::size_t, std::size_t>> r;  // byte ranges kept
    bool prev_match = false;
    switch (how) {
      case Removed:
        for (auto& [o, is] : m)
          if (!is) r.push_back(o);
        break;
      case Isolated:
        for (auto& [o, is] : m) r.push_back(o);
        break;
      case MergedWithPrevious:
        for (auto& [o, is] : m) {
          if (is && !prev_match && !r.empty()) r.back().second = o.second;
          else r.push_back(o);
          prev_match = is;
        }
        break;
      case MergedWithNext:
        for (auto it = m.rbegin(); it != m.rend(); ++it) {
          if (it->second && !prev_match && !r.empty()) r.back().first = it->first.first;
          else r.push_back(it->first);
          prev_match = it->second;
        }
        std::reverse(r.begin(), r.end());
        break;
      case Contiguous:
        for (std::size_t i = 0; i < m.size(); ++i) {
          if (i > 0 && m[i].second == prev_match) r.back().second = m[i].first.second;
          else r.push_back(m[i].first);
          prev_match = m[i].second;
        }
        break;
    }
    for (auto [b, e] : r)
      if (e > b) out.push_back(s.substr(b, e - b));
  }
};

}  // namespace pdiff::tok
