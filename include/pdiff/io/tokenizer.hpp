// pdiff/io/tokenizer.hpp — Tokenizer: a HF tokenizer.json with a BPE model (Mistral's Tekken, GPT-2/4
// and Llama-3 style), encode and decode the way the tokenizers library does.
//
// encode(text): added tokens are matched first on the raw text (leftmost-longest; lstrip, rstrip,
// single_word honoured); the text between them goes through normalizer → pre-tokenizer → BPE; the
// post-processor (TemplateProcessing, Bert/RobertaProcessing, ByteLevel, Sequence) adds BOS etc. when
// add_special_tokens. decode(ids): tokens → decoder chain → text.
// | member                               | result                                                     |
// |--------------------------------------|------------------------------------------------------------|
// | Tokenizer::load(path)                | a tokenizer.json, or a folder with tokenizer.json and      |
// |                                      | (optional) tokenizer_config.json                           |
// | Tokenizer::from_json(text, name)     | the same from memory; errors name `name`                   |
// | encode(text, add_special_tokens)     | ids; invalid UTF-8 is an Error                             |
// | decode(ids, skip_special_tokens)     | text; an unknown id is an Error                            |
// | token_to_id(t), id_to_token(id)      | lookups incl. added tokens (-1 / "" when absent)           |
// | bos_token(), pad_id(), padding_side()| from tokenizer_config.json, defaults "<s>", "<pad>", right |
// | fix_mistral_regex()                  | transformers' fix_mistral_regex=True (also when            |
// |                                      | tokenizer_config.json says "fix_mistral_regex": true)      |
// Added tokens are all matched on the raw text (the reference matches "normalized": true ones after the
// normalizer: the same unless a normalizer changes them); lstrip/rstrip strip ASCII whitespace.
// Not implemented (load Error naming the field): normalizers other than Sequence/Replace/Prepend/Strip/
// NFC/NFD/NFKC/NFKD (e.g. Lowercase, BertNormalizer, Precompiled), models other than BPE, pre-tokenizers
// other than Sequence/Split/ByteLevel.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/bpe.hpp"
#include "pdiff/io/json_guard.hpp"
#include "pdiff/io/pretokenize.hpp"
#include "pdiff/io/token_decoder.hpp"
#include "pdiff/io/unicode.hpp"

namespace pdiff {

enum class PadSide { right, left };

class Tokenizer {
 public:
  struct AddedToken {
    std::string content;
    std::int32_t id = 0;
    bool special = false, lstrip = false, rstrip = false, single_word = false;
  };

  static Tokenizer load(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    fs::path file = fs::is_directory(path) ? path / "tokenizer.json" : path;
    Tokenizer t = from_json(read_file(file), file.string());
    fs::path cfg = file.parent_path() / "tokenizer_config.json";
    if (fs::exists(cfg)) t.apply_config(read_file(cfg), cfg.string());
    return t;
  }

  // What transformers does when a Mistral tokenizer is loaded with fix_mistral_regex=True: the first
  // pre-tokenizer of a Sequence becomes Split(mistral_tekken_pattern, Isolated); any other pre-tokenizer
  // gets that Split in front of it. (The FLUX.2 pipeline loads without the flag: the file's regex applies.)
  void fix_mistral_regex() {
    auto split = tok::PreTokenizer::split_isolated(tok::mistral_tekken_pattern, "mistral_tekken_pattern");
    if (pre_.kind == tok::PreTokenizer::Sequence && !pre_.steps.empty()) {
      pre_.steps[0] = std::move(split);
    } else {
      tok::PreTokenizer seq;
      seq.kind = tok::PreTokenizer::Sequence;
      seq.steps.push_back(std::move(split));
      if (pre_.kind != tok::PreTokenizer::None) seq.steps.push_back(std::move(pre_));
      pre_ = std::move(seq);
    }
  }

  static Tokenizer from_json(std::string_view text, const std::string& name) {
    // nesting ≤ 127 as in serde_json (the tokenizers library's parser): a deep tree would overflow the stack when copied
    if (auto fault = json_guard(text))
      throw Error(detail::cat(name, ": refused: in ", json_path(fault->path), ", ", fault->message));
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      throw Error(detail::cat(name, ": not valid JSON (", e.what(), ")"));
    }
    PDIFF_CHECK(j.is_object(), name, ": must be a JSON object");
    Tokenizer t;
    t.name_ = name;
    PDIFF_CHECK(j.contains("model") && j["model"].is_object(), name, ": \"model\" is missing or not an object");
    const auto& m = j["model"];
    std::string type = tok::field<std::string>(m, "type", name + ".model", "BPE");  // old files omit it
    PDIFF_CHECK(type == "BPE", name, ".model.type: '", type, "' is not supported (only BPE)");
    t.model_ = tok::BpeModel::from_json(m, name + ".model");
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      PDIFF_CHECK(j["added_tokens"].is_array(), name, ".added_tokens: must be an array");
      for (std::size_t i = 0; i < j["added_tokens"].size(); ++i) {
        const auto& a = j["added_tokens"][i];
        std::string at = detail::cat(name, ".added_tokens[", i, "]");
        PDIFF_CHECK(a.is_object() && a.contains("content") && a["content"].is_string() && a.contains("id") &&
                        a["id"].is_number_integer(),
                    at, ": needs a string \"content\" and an integer \"id\"");
        AddedToken tk;
        tk.content = a["content"].get<std::string>();
        auto id = a["id"].get<std::int64_t>();
        PDIFF_CHECK(id >= 0 && id < (1 << 24), at, ".id: ", id, " outside [0, 2^24)");
        PDIFF_CHECK(!tk.content.empty(), at, ".content: an added token cannot be empty");
        unicode::decode_utf8(tk.content, at + ".content");
        tk.id = std::int32_t(id);
        tk.special = tok::field<bool>(a, "special", at, false);
        tk.lstrip = tok::field<bool>(a, "lstrip", at, false);
        tk.rstrip = tok::field<bool>(a, "rstrip", at, false);
        tk.single_word = tok::field<bool>(a, "single_word", at, false);
        t.added_.push_back(tk);
        t.added_first_[std::uint8_t(tk.content[0])] = true;
        t.model_.add_token(tk.content, tk.id);  // decode and token_to_id see added tokens too
      }
    }
    t.normalizer_ = tok::Normalizer::from_json(j.value("normalizer", json()), name + ".normalizer");
    t.pre_ = tok::PreTokenizer::from_json(j.value("pre_tokenizer", json()), name + ".pre_tokenizer");
    t.decoder_ = tok::Decoder::from_json(j.value("decoder", json()), name + ".decoder");
    t.load_post_processor(j.value("post_processor", json()), name + ".post_processor");
    return t;
  }

  // tokenizer_config.json: bos/pad tokens, padding and truncation side.
  void apply_config(std::string_view text, const std::string& name) {
    json c;
    try {
      c = json::parse(text);
    } catch (const json::exception& e) {
      throw Error(detail::cat(name, ": not valid JSON (", e.what(), ")"));
    }
    PDIFF_CHECK(c.is_object(), name, ": must be a JSON object");
    auto token = [&](const char* key, std::string& dst) {
      if (!c.contains(key) || c[key].is_null()) return;
      const auto& v = c[key];
      if (v.is_string()) dst = v.get<std::string>();
      else if (v.is_object() && v.contains("content") && v["content"].is_string()) dst = v["content"].get<std::string>();
      else throw Error(detail::cat(name, ".", key, ": must be a string or {\"content\": ...}"));
    };
    token("bos_token", bos_);
    token("pad_token", pad_);
    auto side = [&](const char* key, PadSide& dst) {
      std::string s = tok::field<std::string>(c, key, name, dst == PadSide::right ? "right" : "left");
      PDIFF_CHECK(s == "right" || s == "left", name, ".", key, ": '", s, "' must be \"right\" or \"left\"");
      dst = s == "right" ? PadSide::right : PadSide::left;
    };
    side("padding_side", padding_side_);
    side("truncation_side", truncation_side_);
    if (tok::field<bool>(c, "fix_mistral_regex", name, false)) fix_mistral_regex();
  }

  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const {
    unicode::decode_utf8(text, name_ + ": encode input");
    std::vector<std::int32_t> ids;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t b = 0, e = 0;
      const AddedToken* tk = find_added(text, pos, b, e);
      encode_plain(text.substr(pos, (tk ? b : text.size()) - pos), ids);
      if (!tk) break;
      ids.push_back(tk->id);
      pos = e;
    }
    if (add_special_tokens) post_process(ids);
    return ids;
  }

  // normalizer + pre-tokenizer only (no added-token matching): the pieces BPE sees
  std::vector<std::string> pre_tokenize(std::string_view text) const {
    unicode::decode_utf8(text, name_ + ": pre_tokenize input");
    std::vector<std::string> pieces{normalizer_.apply(std::string(text))};
    pre_.apply(pieces);
    return pieces;
  }

  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = false) const {
    std::vector<std::string> toks;
    toks.reserve(ids.size());
    for (auto id : ids) {
      if (skip_special_tokens && is_special(id)) continue;
      const std::string& t = model_.id_to_token(id);
      PDIFF_CHECK(!t.empty(), name_, ": decode: id ", id, " is not in the vocabulary");
      toks.push_back(t);
    }
    decoder_.apply(toks);
    std::string out;
    for (const auto& t : toks) out += t;
    return out;
  }

  std::int32_t token_to_id(const std::string& t) const {
    auto it = model_.vocab().find(t);
    return it == model_.vocab().end() ? -1 : it->second;
  }
  const std::string& id_to_token(std::int32_t id) const { return model_.id_to_token(id); }
  bool is_special(std::int32_t id) const {
    for (const auto& a : added_)
      if (a.id == id && a.special) return true;
    return false;
  }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  std::size_t vocab_size() const { return model_.vocab().size(); }
  const std::string& name() const { return name_; }

  const std::string& bos_token() const { return bos_; }
  const std::string& pad_token() const { return pad_; }
  std::int32_t pad_id() const {
    auto id = token_to_id(pad_);
    PDIFF_CHECK(id >= 0, name_, ": pad token '", pad_, "' is not in the vocabulary; padding needs one");
    return id;
  }
  PadSide padding_side() const { return padding_side_; }
  PadSide truncation_side() const { return truncation_side_; }

 private:
  using json = nlohmann::json;

  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    PDIFF_CHECK(in, "tokenizer: cannot read '", p.string(), "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static bool is_word_char(std::string_view s, bool last) {
    if (s.empty()) return false;
    auto d = unicode::decode_utf8(s, "text");
    char32_t c = last ? d.cps.back() : d.cps.front();
    auto cat = unicode::category(c);
    using C = unicode::Category;
    return c == '_' || cat == C::Lu || cat == C::Ll || cat == C::Lt || cat == C::Lm || cat == C::Lo ||
           cat == C::Nd || cat == C::Nl || cat == C::No;
  }

  // The leftmost-longest added token at or after `from`: [b, e) includes stripped whitespace.
  const AddedToken* find_added(std::string_view s, std::size_t from, std::size_t& b, std::size_t& e) const {
    for (std::size_t i = from; i < s.size(); ++i) {
      if (!added_first_[std::uint8_t(s[i])]) continue;
      const AddedToken* best = nullptr;
      for (const auto& a : added_)
        if (s.compare(i, a.content.size(), a.content) == 0 && (!best || a.content.size() > best->content.size()))
          best = &a;
      if (!best) continue;
      b = i, e = i + best->content.size();
      if (best->single_word && (is_word_char(s.substr(0, b), true) || is_word_char(s.substr(e), false))) continue;
      if (best->lstrip)
        while (b > from && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r')) --b;
      if (best->rstrip)
        while (e < s.size() && (s[e] == ' ' || s[e] == '\t' || s[e] == '\n' || s[e] == '\r')) ++e;
      return best;
    }
    return nullptr;
  }

  void encode_plain(std::string_view text, std::vector<std::int32_t>& ids) const {
    if (text.empty()) return;
    std::vector<std::string> pieces{normalizer_.apply(std::string(text))};
    pre_.apply(pieces);
    for (const auto& p : pieces) model_.encode_word(p, ids);
  }

  // post_processor: the ids added around a single sequence (before, after)
  void load_post_processor(const json& j, const std::string& where) {
    if (j.is_null()) return;
    std::string t = tok::type_of(j, where);
    if (t == "Sequence") {
      PDIFF_CHECK(j.contains("processors") && j["processors"].is_array(), where, ".processors: must be an array");
      for (std::size_t i = 0; i < j["processors"].size(); ++i)
        load_post_processor(j["processors"][i], detail::cat(where, ".processors[", i, "]"));
    } else if (t == "ByteLevel") {
      // offsets only; ids unchanged
    } else if (t == "TemplateProcessing") {
      PDIFF_CHECK(j.contains("single") && j["single"].is_array(), where, ".single: must be an array");
      const json specials = j.value("special_tokens", json::object());
      bool seen_a = false;
      for (std::size_t i = 0; i < j["single"].size(); ++i) {
        const auto& it = j["single"][i];
        std::string at = detail::cat(where, ".single[", i, "]");
        if (it.is_object() && it.contains("Sequence")) {
          seen_a = true;
          continue;
        }
        PDIFF_CHECK(it.is_object() && it.contains("SpecialToken") && it["SpecialToken"].is_object() &&
                        it["SpecialToken"].contains("id") && it["SpecialToken"]["id"].is_string(),
                    at, ": must be {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
        auto name = it["SpecialToken"]["id"].get<std::string>();
        PDIFF_CHECK(specials.is_object() && specials.contains(name) && specials[name].is_object() &&
                        specials[name].contains("ids") && specials[name]["ids"].is_array(),
                    at, ": special token '", name, "' is not in ", where, ".special_tokens");
        for (const auto& id : specials[name]["ids"]) {
          PDIFF_CHECK(id.is_number_integer() && id.get<std::int64_t>() >= 0 && id.get<std::int64_t>() < (1 << 24),
                      where, ".special_tokens[\"", name, "\"].ids: must be ids in [0, 2^24)");
          (seen_a ? post_after_ : post_before_).push_back(id.get<std::int32_t>());
        }
      }
    } else if (t == "BertProcessing" || t == "RobertaProcessing") {
      auto pair = [&](const char* key) {
        PDIFF_CHECK(j.contains(key) && j[key].is_array() && j[key].size() == 2 && j[key][1].is_number_integer(),
                    where, ".", key, ": must be [token, id]");
        return j[key][1].get<std::int32_t>();
      };
      post_before_.push_back(pair("cls"));
      post_after_.push_back(pair("sep"));
    } else {
      throw Error(detail::cat(where, ": post_processor type '", t,
                              "' is not supported (TemplateProcessing, ByteLevel, Sequence, Bert/RobertaProcessing are)"));
    }
  }
  void post_process(std::vector<std::int32_t>& ids) const {
    ids.insert(ids.begin(), post_before_.begin(), post_before_.end());
    ids.insert(ids.end(), post_after_.begin(), post_after_.end());
  }

  std::string name_;
  tok::BpeModel model_;
  std::vector<AddedToken> added_;
  std::array<bool, 256> added_first_{};  // first bytes of added tokens: skips most positions quickly
  tok::Normalizer normalizer_;
  tok::PreTokenizer pre_;
  tok::Decoder decoder_;
  std::vector<std::int32_t> post_before_, post_after_;
  std::string bos_ = "<s>", pad_ = "<pad>";
  PadSide padding_side_ = PadSide::right, truncation_side_ = PadSide::right;
};

}  // namespace pdiff
