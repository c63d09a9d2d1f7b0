// pdiff/io/unicode.hpp — the little Unicode a tokenizer needs: UTF-8 in and out, general categories.
//
// | function                      | result                                                              |
// |-------------------------------|---------------------------------------------------------------------|
// | category(cp)                  | general category (Lu, Ll, ..., Cn for unassigned), table lookup     |
// | is_white_space(cp)            | the White_Space property (what Oniguruma's \s matches)              |
// | category_mask(name)           | the categories of a \p{name} as a bit set (0: unknown name)         |
// | simple_fold(cp)               | case folding of ASCII / Latin-1 for (?i)                            |
// | decode_utf8(s, what)          | code points + the byte offset of each; Error naming `what` and the  |
// |                               | byte at fault on invalid UTF-8                                      |
// | append_utf8(out, cp)          | appends the UTF-8 bytes of cp                                       |
// | utf8_lossy(bytes)             | valid UTF-8: each maximal invalid subpart becomes U+FFFD, as Rust's |
// |                               | String::from_utf8_lossy (what the tokenizers library decodes with)  |
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/unicode_tables.hpp"

namespace pdiff::unicode {

enum class Category : std::uint8_t {
  Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi,
  Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co
};

inline Category category(char32_t cp) {
  if (cp > 0x10FFFF) return Category::Cn;
  const auto* b = detail::category_run_start;
  const auto* e = b + detail::category_runs;
  auto it = std::upper_bound(b, e, std::uint32_t(cp));
  return Category(detail::category_run_cat[(it - b) - 1]);
}

inline constexpr std::uint32_t bit(Category c) { return 1u << unsigned(c); }

// The categories a \p{name} stands for, as a bit set (bit(Category)); 0 for an unknown name.
// Names: the two-letter categories, their one-letter groups, LC / L&, and the long group names.
inline std::uint32_t category_mask(std::string_view name) {
  using C = Category;
  const std::uint32_t L = bit(C::Lu) | bit(C::Ll) | bit(C::Lt) | bit(C::Lm) | bit(C::Lo),
                      M = bit(C::Mn) | bit(C::Mc) | bit(C::Me), N = bit(C::Nd) | bit(C::Nl) | bit(C::No),
                      P = bit(C::Pc) | bit(C::Pd) | bit(C::Ps) | bit(C::Pe) | bit(C::Pi) | bit(C::Pf) | bit(C::Po),
                      S = bit(C::Sm) | bit(C::Sc) | bit(C::Sk) | bit(C::So), Z = bit(C::Zs) | bit(C::Zl) | bit(C::Zp),
                      O = bit(C::Cc) | bit(C::Cf) | bit(C::Cs) | bit(C::Co) | bit(C::Cn);
  static const std::pair<std::string_view, std::uint32_t> groups[] = {
      {"L", L}, {"Letter", L}, {"LC", bit(C::Lu) | bit(C::Ll) | bit(C::Lt)}, {"L&", bit(C::Lu) | bit(C::Ll) | bit(C::Lt)},
      {"M", M}, {"Mark", M}, {"N", N}, {"Number", N}, {"P", P}, {"Punctuation", P}, {"S", S}, {"Symbol", S},
      {"Z", Z}, {"Separator", Z}, {"C", O}, {"Other", O}};
  for (const auto& [n, m] : groups)
    if (n == name) return m;
  static const char* two[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
                              "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
  for (unsigned i = 0; i < 30; ++i)
    if (name == two[i]) return 1u << i;
  return 0;
}

// Simple case folding for (?i) regexes: ASCII, Latin-1, and the three characters that fold into them
// (U+017F long s, U+212A Kelvin, U+212B Angstrom). Enough for tokenizer patterns ((?i:'s|'t|...)).
inline char32_t simple_fold(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c == 0x17F) return 's';
  if (c == 0x212A) return 'k';
  if (c == 0x212B) return 0xE5;
  return c;
}
inline char32_t simple_upper(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) ? c - 32 : c;
}

inline bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

namespace detail {
// Length of the valid UTF-8 sequence at s[i], or 0 with `bad` = the length of its maximal invalid
// subpart (at least 1), following Unicode's "best practice for U+FFFD substitution".
inline std::size_t utf8_seq(std::string_view s, std::size_t i, char32_t& cp, std::size_t& bad) {
  const auto u = [&](std::size_t k) { return std::uint8_t(s[k]); };
  std::uint8_t b0 = u(i);
  bad = 1;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t n;
  std::uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  char32_t c = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (std::size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    std::uint8_t b = u(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
    c = (c << 6) | (b & 0x3F);
    bad = k + 1;
  }
  cp = c;
  return n;
}
}  // namespace detail

struct Decoded {
  std::vector<char32_t> cps;
  std::vector<std::size_t> offsets;  // byte offset of each code point, plus the total size at the end
};

inline Decoded decode_utf8(std::string_view s, std::string_view what) {
  Decoded d;
  d.cps.reserve(s.size());
  d.offsets.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    std::size_t bad = 0;
    std::size_t n = detail::utf8_seq(s, i, cp, bad);
    PDIFF_CHECK(n != 0, what, ": invalid UTF-8 at byte ", i, " (0x", std::hex, int(std::uint8_t(s[i])), std::dec,
                "); text must be UTF-8");
    d.cps.push_back(cp);
    d.offsets.push_back(i);
    i += n;
  }
  d.offsets.push_back(s.size());
  return d;
}

inline std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    std::size_t bad = 0;
    std::size_t n = detail::utf8_seq(s, i, cp, bad);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

}  // namespace pdiff::unicode
