// pdiff/io/bpe.hpp — BpeModel: the "model" of a tokenizer.json whose type is BPE.
//
// Loads vocab {token: id} and merges, in either format the tokenizers library writes: "a b" strings
// (≤ 0.19) or ["a", "b"] pairs (≥ 0.20). A word (one pre-token, byte-level characters) becomes ids:
// | case                                  | result                                                    |
// |---------------------------------------|-----------------------------------------------------------|
// | ignore_merges and the word is a token | that one id                                               |
// | a character not in the vocab          | byte_fallback: its UTF-8 bytes as <0xXX> tokens (if all    |
// |                                       | exist); else unk_token (fused if fuse_unk); else dropped   |
// | otherwise                             | merges applied lowest rank first, leftmost on ties         |
// Load errors name the field: a merge whose parts or result are not in the vocab, a malformed merge,
// ids outside [0, 2^24), dropout or subword prefix/suffix (not implemented).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/pretokenize.hpp"
#include "pdiff/io/unicode.hpp"

namespace pdiff::tok {

class BpeModel {
 public:
  BpeModel() = default;

  static BpeModel from_json(const json& m, const std::string& where) {
    BpeModel b;
    PDIFF_CHECK(m.contains("vocab") && m["vocab"].is_object(), where, ".vocab: missing or not an object");
    for (const auto& [tok, id] : m["vocab"].items()) {
      PDIFF_CHECK(id.is_number_integer(), where, ".vocab[\"", tok, "\"]: id must be an integer");
      auto v = id.get<std::int64_t>();
      PDIFF_CHECK(v >= 0 && v < (1 << 24), where, ".vocab[\"", tok, "\"]: id ", v, " outside [0, 2^24)");
      b.add_token(tok, std::int32_t(v));
    }
    if (m.contains("merges") && !m["merges"].is_null()) {
      PDIFF_CHECK(m["merges"].is_array(), where, ".merges: must be an array");
      const auto& ms = m["merges"];
      for (std::size_t r = 0; r < ms.size(); ++r) {
        std::string a, c;
        const auto& e = ms[r];
        std::string at = detail::cat(where, ".merges[", r, "]");
        if (e.is_string()) {  // "a b"
          auto s = e.get<std::string>();
          auto sp = s.find(' ');
          PDIFF_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, at, ": '", s,
                      "' must be two tokens separated by one space");
          a = s.substr(0, sp), c = s.substr(sp + 1);
        } else {
          PDIFF_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(), at,
                      ": must be \"a b\" or [\"a\", \"b\"]");
          a = e[0].get<std::string>(), c = e[1].get<std::string>();
        }
        auto ia = b.vocab_.find(a), ic = b.vocab_.find(c), in = b.vocab_.find(a + c);
        PDIFF_CHECK(ia != b.vocab_.end(), at, ": '", a, "' is not in model.vocab; merges combine vocab tokens");
        PDIFF_CHECK(ic != b.vocab_.end(), at, ": '", c, "' is not in model.vocab; merges combine vocab tokens");
        PDIFF_CHECK(in != b.vocab_.end(), at, ": the merged token '", a + c,
                    "' is not in model.vocab; a merge result must be a vocab token");
        // a repeated merge: the last rank wins, as in the reference
        b.merges_.insert_or_assign(key(ia->second, ic->second), Merge{std::int32_t(r), in->second});
      }
    }
    double dropout = field<double>(m, "dropout", where, 0.0);
    PDIFF_CHECK(dropout == 0.0, where, ".dropout: ", dropout, " is not supported (inference needs none)");
    PDIFF_CHECK(field<std::string>(m, "continuing_subword_prefix", where, "").empty() &&
                    field<std::string>(m, "end_of_word_suffix", where, "").empty(),
                where, ": continuing_subword_prefix / end_of_word_suffix are not supported");
    b.byte_fallback_ = field<bool>(m, "byte_fallback", where, false);
    b.ignore_merges_ = field<bool>(m, "ignore_merges", where, false);
    b.fuse_unk_ = field<bool>(m, "fuse_unk", where, false);
    auto unk = field<std::string>(m, "unk_token", where, "");
    if (!unk.empty()) {
      auto it = b.vocab_.find(unk);
      PDIFF_CHECK(it != b.vocab_.end(), where, ".unk_token: '", unk, "' is not in model.vocab");
      b.unk_ = it->second;
    }
    return b;
  }

  // One pre-token → ids, appended to `out`.
  void encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      if (auto it = vocab_.find(std::string(word)); it != vocab_.end()) return out.push_back(it->second);
    }
    std::vector<Sym> sy;
    auto d = unicode::decode_utf8(word, "BPE word");
    for (std::size_t i = 0; i < d.cps.size(); ++i) {
      auto ch = word.substr(d.offsets[i], d.offsets[i + 1] - d.offsets[i]);
      if (auto it = vocab_.find(std::string(ch)); it != vocab_.end()) {
        sy.push_back({it->second});
        continue;
      }
      if (byte_fallback_) {
        std::vector<std::int32_t> bytes;
        for (unsigned char c : ch) {
          static const char* hex = "0123456789ABCDEF";
          std::string t = {'<', '0', 'x', hex[c >> 4], hex[c & 15], '>'};
          if (auto it = vocab_.find(t); it != vocab_.end()) bytes.push_back(it->second);
          else break;
        }
        if (bytes.size() == ch.size()) {
          for (auto id : bytes) sy.push_back({id});
          continue;
        }
      }
      if (unk_ >= 0 && !(fuse_unk_ && !sy.empty() && sy.back().id == unk_ && sy.back().unk)) sy.push_back({unk_, true});
    }
    merge_all(sy);
    for (const auto& s : sy)
      if (s.alive) out.push_back(s.id);
  }

  const std::unordered_map<std::string, std::int32_t>& vocab() const { return vocab_; }
  // id → token; empty for an id the vocab does not have
  const std::string& id_to_token(std::int32_t id) const {
    static const std::string none;
    return id >= 0 && std::size_t(id) < tokens_.size() ? tokens_[std::size_t(id)] : none;
  }
  std::size_t merges() const { return merges_.size(); }
  void add_token(const std::string& tok, std::int32_t id) {
    vocab_[tok] = id;
    if (tokens_.size() <= std::size_t(id)) tokens_.resize(std::size_t(id) + 1);
    tokens_[std::size_t(id)] = tok;
  }

 private:
  struct Merge {
    std::int32_t rank, id;
  };
  struct Sym {
    std::int32_t id;
    bool unk = false;
    bool alive = true;
    std::int32_t next = -1, prev = -1;
  };
  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }

  // Lowest rank first, then leftmost (as the reference's heap of (rank, position)).
  void merge_all(std::vector<Sym>& sy) const {
    const auto n = std::int32_t(sy.size());
    for (std::int32_t i = 0; i < n; ++i) sy[std::size_t(i)].prev = i - 1, sy[std::size_t(i)].next = i + 1 < n ? i + 1 : -1;
    using Item = std::pair<std::int32_t, std::int32_t>;  // (rank, position)
    std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
    auto push = [&](std::int32_t p) {
      if (p < 0) return;
      auto q = sy[std::size_t(p)].next;
      if (q < 0) return;
      auto it = merges_.find(key(sy[std::size_t(p)].id, sy[std::size_t(q)].id));
      if (it != merges_.end()) heap.push({it->second.rank, p});
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      auto [rank, p] = heap.top();
      heap.pop();
      Sym& a = sy[std::size_t(p)];
      if (!a.alive || a.next < 0) continue;
      Sym& b = sy[std::size_t(a.next)];
      auto it = merges_.find(key(a.id, b.id));
      if (it == merges_.end() || it->second.rank != rank) continue;  // stale entry
      a.id = it->second.id;
      a.unk = false;
      b.alive = false;
      a.next = b.next;
      if (b.next >= 0) sy[std::size_t(b.next)].prev = p;
      push(a.prev);
      push(p);
    }
  }

  std::unordered_map<std::string, std::int32_t> vocab_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  bool byte_fallback_ = false, ignore_merges_ = false, fuse_unk_ = false;
  std::int32_t unk_ = -1;
};

}  // namespace pdiff::tok
