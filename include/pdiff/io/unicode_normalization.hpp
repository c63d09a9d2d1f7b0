// pdiff/io/unicode_normalization.hpp — Unicode normalization forms (UAX #15) as the tokenizers library
// computes them: its NFC/NFD/NFKC/NFKD normalizers run the crate unicode-normalization-alignments, whose
// data is Unicode 9.0.0; the tables (io/unicode_normalization_tables.hpp) are that data, so a character
// added after 9.0 has combining class 0 and no decomposition here too.
//
// | function                       | result                                                              |
// |--------------------------------|---------------------------------------------------------------------|
// | combining_class(cp)            | canonical combining class (0 for starters and unknown code points)  |
// | decompose(cp, compat, out)     | appends the full (recursive) canonical or compatibility             |
// |                                | decomposition of cp, Hangul syllables algorithmically               |
// | compose(a, b)                  | the primary composite of the pair, or 0                             |
// | normalize(cps, form)           | decomposition, canonical ordering (stable by combining class),      |
// |                                | then for NFC/NFKC canonical composition                             |
// | normalize_utf8(s, form, what)  | the same on UTF-8; ASCII text is returned as is; Error naming       |
// |                                | `what` on invalid UTF-8                                             |
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/io/unicode.hpp"
#include "pdiff/io/unicode_normalization_tables.hpp"

namespace pdiff::unicode {

enum class NormalForm : std::uint8_t { NFC, NFD, NFKC, NFKD };

namespace detail {
// Hangul syllables: S = SBase + (L * VCount + V) * TCount + T (Unicode §3.12).
inline constexpr char32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
inline constexpr char32_t LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;
}  // namespace detail

inline std::uint8_t combining_class(char32_t cp) {
  const auto* b = std::begin(detail::ccc_ranges);
  const auto* e = std::end(detail::ccc_ranges);
  auto it = std::upper_bound(b, e, std::uint32_t(cp), [](std::uint32_t c, const detail::CccRange& r) { return c < r.first; });
  if (it == b) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

inline void decompose(char32_t cp, bool compat, std::vector<char32_t>& out) {
  using namespace detail;
  if (cp >= SBase && cp < SBase + SCount) {
    char32_t s = cp - SBase;
    out.push_back(LBase + s / NCount);
    out.push_back(VBase + (s % NCount) / TCount);
    if (s % TCount) out.push_back(TBase + s % TCount);
    return;
  }
  const auto* b = std::begin(decompositions);
  const auto* e = std::end(decompositions);
  auto it = std::lower_bound(b, e, std::uint32_t(cp), [](const Decomposition& d, std::uint32_t c) { return d.cp < c; });
  if (it == e || it->cp != cp || (it->compat && !compat)) {
    out.push_back(cp);
    return;
  }
  for (std::size_t k = 0; k < it->len; ++k) decompose(decomposition_chars[it->at + k], compat, out);
}

inline char32_t compose(char32_t a, char32_t b) {
  using namespace detail;
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
    return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
    return a + (b - TBase);
  const auto* f = std::begin(compositions);
  const auto* e = std::end(compositions);
  auto it = std::lower_bound(f, e, std::pair{std::uint32_t(a), std::uint32_t(b)},
                             [](const Composition& c, std::pair<std::uint32_t, std::uint32_t> k) {
                               return c.first < k.first || (c.first == k.first && c.second < k.second);
                             });
  return it != e && it->first == a && it->second == b ? it->composite : 0;
}

inline std::vector<char32_t> normalize(std::span<const char32_t> cps, NormalForm form) {
  const bool compat = form == NormalForm::NFKC || form == NormalForm::NFKD;
  std::vector<char32_t> d;
  d.reserve(cps.size() + cps.size() / 2);
  std::size_t run = 0;  // canonical ordering: insert each mark into the sorted run of marks before it
  for (char32_t cp : cps) {
    std::size_t from = d.size();
    decompose(cp, compat, d);
    for (std::size_t i = from; i < d.size(); ++i) {
      std::uint8_t cc = combining_class(d[i]);
      if (cc == 0) {
        run = i + 1;
        continue;
      }
      std::size_t j = i;
      for (char32_t c = d[i]; j > run && combining_class(d[j - 1]) > cc; --j) d[j] = d[j - 1], d[j - 1] = c;
    }
  }
  if (form == NormalForm::NFD || form == NormalForm::NFKD) return d;

  // Canonical composition: a character joins the last starter unless blocked (a character between them
  // with class 0 or >= its own); `last_cc` is the class of the last character kept after that starter.
  std::vector<char32_t> out;
  out.reserve(d.size());
  std::size_t starter = SIZE_MAX;
  int last_cc = 0;
  for (char32_t c : d) {
    int cc = combining_class(c);
    if (starter != SIZE_MAX && (out.size() - 1 == starter || (last_cc != 0 && last_cc < cc))) {
      if (char32_t p = compose(out[starter], c)) {
        out[starter] = p;
        continue;
      }
    }
    if (cc == 0) starter = out.size();
    last_cc = cc;
    out.push_back(c);
  }
  return out;
}

inline std::string normalize_utf8(std::string_view s, NormalForm form, std::string_view what) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return std::uint8_t(c) < 0x80; })) return std::string(s);
  auto cps = normalize(decode_utf8(s, what).cps, form);
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

}  // namespace pdiff::unicode
