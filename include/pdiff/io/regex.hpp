// pdiff/io/regex.hpp — UnicodeRegex: the Oniguruma-flavoured regexes of tokenizer.json pre-tokenizers.
//
// A backtracking matcher over code points with leftmost-first (Perl/Oniguruma) semantics, enough for the
// Split patterns of Tekken, GPT-2/4 and Llama-3 style tokenizers. std::regex has no \p{..}.
// | feature                                | supported                                                     |
// |----------------------------------------|---------------------------------------------------------------|
// | literals, ., ^, $, \A, \z              | yes (. does not match \n, as in Oniguruma)                    |
// | \s \S \d \D \w \W, \p{X} \P{X} \p{^X}  | X a general category (L, Lu, Ll, Lt, Lm, Lo, LC, M*, N*, P*,  |
// |                                        | S*, Z*, C*) or its long name (Letter, Number, ...)            |
// | [...] [^...] ranges, escapes inside    | yes; nested classes and && are an Error                       |
// | | ( ) (?: ) (?> ) (?= ) (?! )           | yes; lookbehind and backreferences are an Error               |
// | (?i) (?-i) (?i:...) (?-i:...)          | case folding of ASCII and Latin-1 (+ U+017F, U+212A, U+212B)  |
// | * + ? {n} {n,} {n,m}, lazy ?, possessive + | yes; an unbounded repeat of something that can match empty |
// |                                        | is an Error (it could loop forever)                           |
// | \r \n \t \f \v \e \a \xHH \x{H..} \uHHHH | yes                                                         |
// Matching is bounded: more than `step_budget` steps in one search is an Error, never a hang.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/unicode.hpp"

namespace pdiff {

class UnicodeRegex {
 public:
  UnicodeRegex() = default;
  // `pattern`: UTF-8. Errors name `what` (e.g. "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern").
  UnicodeRegex(std::string_view pattern, std::string what) : what_(std::move(what)) {
    pat_ = unicode::decode_utf8(pattern, what_).cps;
    Node root = parse_alt();
    PDIFF_CHECK(i_ == pat_.size(), what_, ": unbalanced ')' at character ", i_, " of the regex");
    compile(root);
    emit({Op::Match});
  }

  // The first match at or after `from` in `s`: true with [begin, end) set.
  bool search(const std::vector<char32_t>& s, std::size_t from, std::size_t& begin, std::size_t& end) const {
    std::size_t steps = 0;
    for (std::size_t st = from; st <= s.size(); ++st)
      if (run(s, 0, st, end, steps)) {
        begin = st;
        return true;
      }
    return false;
  }

  // All non-overlapping matches, left to right (an empty match moves on by one character).
  std::vector<std::pair<std::size_t, std::size_t>> find_all(const std::vector<char32_t>& s) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::size_t pos = 0, b = 0, e = 0;
    while (pos <= s.size() && search(s, pos, b, e)) {
      out.emplace_back(b, e);
      pos = e > b ? e : e + 1;
    }
    return out;
  }

  std::size_t step_budget = 50'000'000;

 private:
  enum class Op : std::uint8_t { Char, Any, Class, Split, Jmp, Match, Look, Atomic, Bol, Eol };
  struct Inst {
    Op op;
    char32_t c = 0;
    int x = 0, y = 0;  // Split: first, second choice; Look/Atomic: x = after the sub-program; Class: x = index
    bool neg = false;  // Look: negative; Char: case-insensitive (c is folded)
  };
  struct Item {  // one part of a character class
    enum Kind : std::uint8_t { Range, Cats, Space } kind;
    bool neg = false;
    char32_t lo = 0, hi = 0;
    std::uint32_t cats = 0;  // bit per unicode::Category
  };
  struct Class {
    std::vector<Item> items;
    bool neg = false, icase = false;
  };
  enum class K : std::uint8_t { Empty, Char, Any, Class, Concat, Alt, Repeat, Look, Atomic, Bol, Eol };
  struct Node {
    K k = K::Empty;
    char32_t c = 0;
    int cls = 0, min = 0, max = 0;  // max -1: unbounded
    bool greedy = true, neg = false;  // neg — Look: negative; Char: case-insensitive
    std::vector<Node> kids{};
  };

  std::string what_;
  std::vector<char32_t> pat_;
  std::size_t i_ = 0;
  int depth_ = 0;
  bool icase_ = false;
  std::vector<Inst> prog_;
  std::vector<Class> classes_;

  [[noreturn]] void fail(const char* rule) const {
    throw Error(detail::cat(what_, ": at character ", i_, " of the regex: ", rule));
  }
  bool more() const { return i_ < pat_.size(); }
  char32_t peek() const { return pat_[i_]; }
  bool eat(char32_t c) {
    if (more() && peek() == c) return ++i_, true;
    return false;
  }

  // ---- parsing -------------------------------------------------------------------------------
  Node parse_alt() {
    Node alt{K::Alt};
    alt.kids.push_back(parse_concat());
    while (eat('|')) alt.kids.push_back(parse_concat());
    return alt.kids.size() == 1 ? std::move(alt.kids[0]) : alt;
  }
  Node parse_concat() {
    Node cat{K::Concat};
    while (more() && peek() != '|' && peek() != ')') cat.kids.push_back(parse_repeat());
    return cat;
  }
  bool parse_int(int& v) {
    std::size_t s = i_;
    v = 0;
    while (more() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + int(peek() - '0');
      if (v > 100000) fail("repeat count above 100000");
      ++i_;
    }
    return i_ > s;
  }
  Node parse_repeat() {
    Node atom = parse_atom();
    for (int stacked = 0; more(); ++stacked) {
      if (stacked > 100) fail("more than 100 quantifiers on one atom");
      int lo = 0, hi = 0;
      std::size_t save = i_;
      if (eat('*')) lo = 0, hi = -1;
      else if (eat('+')) lo = 1, hi = -1;
      else if (eat('?')) lo = 0, hi = 1;
      else if (eat('{')) {
        if (!parse_int(lo)) { i_ = save; break; }  // not a quantifier: '{' is a literal
        hi = lo;
        if (eat(',')) { if (!parse_int(hi)) hi = -1; }
        if (!eat('}')) { i_ = save; break; }
        if (hi != -1 && hi < lo) fail("{n,m} with m < n");
      } else break;
      if (atom.k == K::Bol || atom.k == K::Eol || atom.k == K::Look) fail("quantifier after an assertion");
      Node rep{K::Repeat};
      rep.min = lo, rep.max = hi;
      bool possessive = false;
      if (eat('?')) rep.greedy = false;
      else if (eat('+')) possessive = true;
      rep.kids.push_back(std::move(atom));
      if (possessive) {
        Node at{K::Atomic};
        at.kids.push_back(std::move(rep));
        atom = std::move(at);
      } else {
        atom = std::move(rep);
      }
    }
    return atom;
  }
  Node parse_atom() {
    char32_t c = pat_[i_++];
    switch (c) {
      case '(': {
        if (++depth_ > 100) fail("groups nested more than 100 deep");
        Node n{K::Concat};
        const bool outer_icase = icase_;
        if (eat('?')) {
          if (eat(':')) n.k = K::Concat;
          else if (eat('>')) n.k = K::Atomic;
          else if (eat('=')) n.k = K::Look;
          else if (eat('!')) n.k = K::Look, n.neg = true;
          else if (more() && (peek() == 'i' || peek() == '-')) {
            bool on = !eat('-');
            if (!eat('i')) fail("only the i flag is supported: (?i) (?-i) (?i:...) (?-i:...)");
            if (eat(')')) {  // (?i): to the end of the enclosing group
              icase_ = on;
              --depth_;
              return Node{K::Empty};
            }
            if (!eat(':')) fail("only the i flag is supported: (?i) (?-i) (?i:...) (?-i:...)");
            icase_ = on;
          } else {
            fail("only (?: (?> (?= (?! (?i: groups are supported (no lookbehind, other flags or named groups)");
          }
        }
        n.kids.push_back(parse_alt());
        icase_ = outer_icase;
        if (!eat(')')) fail("missing ')'");
        --depth_;
        return n;
      }
      case ')': fail("unbalanced ')'");
      case '*': case '+': case '?': fail("quantifier without a target");
      case '.': return Node{K::Any};
      case '^': return Node{K::Bol};
      case '$': return Node{K::Eol};
      case '[': return class_node(parse_class());
      case '\\': {
        if (!more()) fail("trailing backslash");
        char32_t e = peek();
        if (e == 'A') return ++i_, Node{K::Bol};
        if (e == 'z') return ++i_, Node{K::Eol};
        Class cl;
        if (parse_class_escape(cl.items)) return class_node(std::move(cl));
        Node n{K::Char};
        n.c = parse_char_escape();
        n.neg = icase_;
        return n;
      }
      default: {
        Node n{K::Char};
        n.c = c;
        n.neg = icase_;
        return n;
      }
    }
  }
  Node class_node(Class cl) {
    cl.icase = icase_;
    Node n{K::Class};
    n.cls = int(classes_.size());
    classes_.push_back(std::move(cl));
    return n;
  }
  std::uint32_t property(const std::u32string& name) {
    std::string ascii;
    for (char32_t c : name) ascii += c < 128 ? char(c) : '?';
    std::uint32_t m = unicode::category_mask(ascii);
    if (m == 0) fail("unsupported \\p{...} property (general categories only)");
    return m;
  }
  // \s \S \d \D \w \W \p{..} \P{..} (the backslash already eaten): appends to `items`.
  bool parse_class_escape(std::vector<Item>& items) {
    using C = unicode::Category;
    char32_t e = peek();
    const std::uint32_t word = unicode::category_mask("L") | unicode::category_mask("M") | unicode::bit(C::Nd) |
                               unicode::bit(C::Pc);
    switch (e) {
      case 's': case 'S': ++i_; items.push_back({Item::Space, e == 'S'}); return true;
      case 'd': case 'D': ++i_; items.push_back({Item::Cats, e == 'D', 0, 0, unicode::bit(C::Nd)}); return true;
      case 'w': case 'W': ++i_; items.push_back({Item::Cats, e == 'W', 0, 0, word}); return true;
      case 'p': case 'P': {
        ++i_;
        bool neg = e == 'P';
        std::u32string name;
        if (eat('{')) {
          if (eat('^')) neg = !neg;
          while (more() && peek() != '}') name += pat_[i_++];
          if (!eat('}')) fail("missing '}' after \\p{");
        } else {
          if (!more()) fail("\\p needs a property");
          name += pat_[i_++];
        }
        items.push_back({Item::Cats, neg, 0, 0, property(name)});
        return true;
      }
      default: return false;
    }
  }
  char32_t parse_hex(int max_digits, bool braced) {
    char32_t v = 0;
    int n = 0;
    while (more() && n < max_digits) {
      char32_t h = peek();
      int d = h >= '0' && h <= '9' ? int(h - '0') : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
            : h >= 'A' && h <= 'F' ? int(h - 'A' + 10) : -1;
      if (d < 0) break;
      v = v * 16 + char32_t(d), ++n, ++i_;
    }
    if (n == 0 || (braced && !eat('}')) || v > 0x10FFFF) fail("bad hexadecimal escape");
    return v;
  }
  char32_t parse_char_escape() {
    char32_t e = pat_[i_++];
    switch (e) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case 'f': return '\f';
      case 'v': return '\v';
      case 'a': return '\a';
      case 'e': return 0x1B;
      case 'x': return eat('{') ? parse_hex(8, true) : parse_hex(2, false);
      case 'u': return parse_hex(4, false);
      default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
          fail("unsupported escape (backreferences, \\b, \\h, \\k, ... are not implemented)");
        return e;  // an escaped punctuation character stands for itself
    }
  }
  Class parse_class() {
    Class cl;
    cl.neg = eat('^');
    bool first = true;
    while (true) {
      if (!more()) fail("missing ']'");
      char32_t c = peek();
      if (c == ']' && !first) break;
      first = false;
      if (c == '[') fail("nested character classes are not supported");
      if (c == '&' && i_ + 1 < pat_.size() && pat_[i_ + 1] == '&') fail("class intersection && is not supported");
      ++i_;
      char32_t lo = c;
      if (c == '\\') {
        if (!more()) fail("trailing backslash");
        if (parse_class_escape(cl.items)) continue;
        lo = parse_char_escape();
      }
      char32_t hi = lo;
      if (more() && peek() == '-' && i_ + 1 < pat_.size() && pat_[i_ + 1] != ']') {
        ++i_;
        hi = pat_[i_++];
        if (hi == '\\') {
          if (!more()) fail("trailing backslash");
          hi = parse_char_escape();
        }
        if (hi < lo) fail("class range out of order");
      }
      cl.items.push_back({Item::Range, false, lo, hi, 0});
    }
    ++i_;  // ']'
    return cl;
  }

  // ---- compiling -----------------------------------------------------------------------------
  static bool nullable(const Node& n) {
    switch (n.k) {
      case K::Char: case K::Any: case K::Class: return false;
      case K::Concat: case K::Atomic:
        for (const auto& k : n.kids)
          if (!nullable(k)) return false;
        return true;
      case K::Alt:
        for (const auto& k : n.kids)
          if (nullable(k)) return true;
        return false;
      case K::Repeat: return n.min == 0 || nullable(n.kids[0]);
      default: return true;
    }
  }
  int emit(Inst in) {
    if (prog_.size() > 200000) fail("the compiled regex is too large (above 200000 instructions)");
    prog_.push_back(in);
    return int(prog_.size()) - 1;
  }
  void compile(const Node& n) {
    switch (n.k) {
      case K::Empty: return;
      case K::Char: emit({Op::Char, n.neg ? unicode::simple_fold(n.c) : n.c, 0, 0, n.neg}); return;
      case K::Any: emit({Op::Any}); return;
      case K::Class: emit({Op::Class, 0, n.cls}); return;
      case K::Bol: emit({Op::Bol}); return;
      case K::Eol: emit({Op::Eol}); return;
      case K::Concat:
        for (const auto& k : n.kids) compile(k);
        return;
      case K::Alt: {
        std::vector<int> jumps;
        for (std::size_t a = 0; a + 1 < n.kids.size(); ++a) {
          int sp = emit({Op::Split});
          prog_[sp].x = sp + 1;
          compile(n.kids[a]);
          jumps.push_back(emit({Op::Jmp}));
          prog_[sp].y = int(prog_.size());
        }
        compile(n.kids.back());
        for (int j : jumps) prog_[j].x = int(prog_.size());
        return;
      }
      case K::Look: case K::Atomic: {
        int at = emit({n.k == K::Look ? Op::Look : Op::Atomic, 0, 0, 0, n.neg});
        compile(n.kids[0]);
        emit({Op::Match});
        prog_[at].x = int(prog_.size());
        return;
      }
      case K::Repeat: {
        const Node& body = n.kids[0];
        for (int r = 0; r < n.min; ++r) compile(body);
        auto split = [&](int body_pc, int skip_pc, int at) {
          prog_[at].x = n.greedy ? body_pc : skip_pc;
          prog_[at].y = n.greedy ? skip_pc : body_pc;
        };
        if (n.max < 0) {
          if (nullable(body)) fail("an unbounded repeat of something that can match empty is not supported");
          int sp = emit({Op::Split});
          compile(body);
          int j = emit({Op::Jmp});
          prog_[j].x = sp;
          split(sp + 1, int(prog_.size()), sp);
        } else {
          std::vector<int> splits;
          for (int r = n.min; r < n.max; ++r) {
            splits.push_back(emit({Op::Split}));
            compile(body);
          }
          for (int sp : splits) split(sp + 1, int(prog_.size()), sp);
        }
        return;
      }
    }
  }

  // ---- matching ------------------------------------------------------------------------------
  bool in_class(const Class& cl, char32_t c) const {
    if (cl.icase) return in_class_exact(cl, c) || in_class_exact(cl, unicode::simple_fold(c)) ||
                          in_class_exact(cl, unicode::simple_upper(unicode::simple_fold(c)));
    return in_class_exact(cl, c);
  }
  bool in_class_exact(const Class& cl, char32_t c) const {
    bool hit = false;
    for (const auto& it : cl.items) {
      bool m = it.kind == Item::Range  ? (c >= it.lo && c <= it.hi)
               : it.kind == Item::Space ? unicode::is_white_space(c)
                                        : (it.cats & unicode::bit(unicode::category(c))) != 0;
      if (m != it.neg) {
        hit = true;
        break;
      }
    }
    return hit != cl.neg;
  }
  // Runs the program from `pc` at `pos` until its Match: the first match in priority order.
  bool run(const std::vector<char32_t>& s, int pc0, std::size_t pos0, std::size_t& out, std::size_t& steps) const {
    std::vector<std::pair<int, std::size_t>> stack{{pc0, pos0}};
    while (!stack.empty()) {
      auto [pc, pos] = stack.back();
      stack.pop_back();
      for (bool alive = true; alive;) {
        PDIFF_CHECK(++steps <= step_budget, what_, ": matching took more than ", step_budget,
                    " steps (catastrophic backtracking); the pattern or the text is at fault");
        const Inst& in = prog_[std::size_t(pc)];
        switch (in.op) {
          case Op::Char:
            alive = pos < s.size() && (in.neg ? unicode::simple_fold(s[pos]) : s[pos]) == in.c;
            ++pos, ++pc;
            break;
          case Op::Any: alive = pos < s.size() && s[pos] != '\n'; ++pos, ++pc; break;
          case Op::Class: alive = pos < s.size() && in_class(classes_[std::size_t(in.x)], s[pos]); ++pos, ++pc; break;
          case Op::Split: stack.emplace_back(in.y, pos); pc = in.x; break;
          case Op::Jmp: pc = in.x; break;
          case Op::Match: out = pos; return true;
          case Op::Bol: alive = pos == 0; ++pc; break;
          case Op::Eol: alive = pos == s.size(); ++pc; break;
          case Op::Look: {
            std::size_t e = 0;
            alive = run(s, pc + 1, pos, e, steps) != in.neg;
            pc = in.x;
            break;
          }
          case Op::Atomic: {
            std::size_t e = 0;
            alive = run(s, pc + 1, pos, e, steps);
            pos = e, pc = in.x;
            break;
          }
        }
      }
    }
    return false;
  }
};

}  // namespace pdiff
