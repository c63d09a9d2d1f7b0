// pdiff/io/json_guard.hpp — json_guard(text, rules): one SAX pass over untrusted JSON before it is
// turned into an nlohmann::json tree, for the checks nlohmann's DOM parser does not make.
//
// | rule (JsonRules)        | why                                                                        |
// |-------------------------|----------------------------------------------------------------------------|
// | max_depth               | nlohmann's parser has no nesting limit, but copying, comparing and dumping a tree recurse: a file nested 100k arrays deep overflows the stack. serde_json (the safetensors reference) stops at 127 |
// | unique_keys             | nlohmann keeps the last of two equal keys (compared after unescaping, so "a" and "\u0061" are equal); a reader that keeps the first would see another file |
// | (always) no NUL byte    | nlohmann stops at a NUL byte and accepts whatever follows it; JSON has none outside \u0000 |
// | (always) no byte-order mark | nlohmann skips a leading UTF-8 BOM; RFC 8259 parsers such as serde_json reject it |
// The result is empty when the text passes, else the first rule broken, with the key path where it applies
// (e.g. "key 'dtype' appears twice in 'w'"). Syntax errors are left to the parser that follows.
#pragma once

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/core/error.hpp"

namespace pdiff {

struct JsonRules {
  std::size_t max_depth = 127;  // containers nested deeper are refused (serde_json's recursion limit)
  bool unique_keys = false;
};

// What json_guard found wrong: the rule broken and the keys leading to it ("" for the top level).
struct JsonFault {
  std::string message;
  std::vector<std::string> path;
};

namespace detail {
// A SAX handler that builds nothing: it tracks depth, the enclosing keys and each object's keys.
class JsonGuardSax {
 public:
  using json = nlohmann::json;
  explicit JsonGuardSax(const JsonRules& r) : rules_(r) {}
  std::optional<JsonFault> fault;

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const std::string&) { return value(); }
  bool string(std::string&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    Frame& f = frames_.back();
    if (rules_.unique_keys && !f.keys.insert(k).second) return fail("key '" + k + "' appears twice");
    f.key = k;
    return true;
  }
  // Syntax errors are the DOM parser's to report, with its own position.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  struct Frame {
    bool object;
    std::string key;  // the key whose value is being read (objects only)
    std::set<std::string> keys;
  };
  bool value() { return true; }
  bool open(bool object) {
    if (frames_.size() + 1 > rules_.max_depth)
      return fail("nesting is deeper than " + std::to_string(rules_.max_depth) + " levels");
    frames_.push_back({object, {}, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }
  bool fail(std::string why) {
    JsonFault f{std::move(why), {}};
    // the enclosing keys, outermost first; the innermost frame's own pending key is not part of the path
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i)
      f.path.push_back(frames_[i].object ? frames_[i].key : std::string("[]"));
    fault = std::move(f);
    return false;
  }
  const JsonRules& rules_;
  std::vector<Frame> frames_;
};
}  // namespace detail

// Checks `text` against `rules`; empty when it passes (or when it is not JSON at all: the parser says so).
inline std::optional<JsonFault> json_guard(std::string_view text, const JsonRules& rules = {}) {
  if (const void* nul = std::memchr(text.data(), '\0', text.size()))
    return JsonFault{"has a NUL byte at offset " +
                         std::to_string(static_cast<const char*>(nul) - text.data()) +
                         " (JSON has none; padding must be spaces)",
                     {}};
  if (text.substr(0, 3) == "\xEF\xBB\xBF") return JsonFault{"starts with a UTF-8 byte-order mark, which JSON must not have", {}};
  detail::JsonGuardSax sax(rules);
  nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  return sax.fault;
}

// "'a'.'b'.[]" for a fault's path ("the top level" for an empty one), its first 4 steps only.
inline std::string json_path(const std::vector<std::string>& path) {
  if (path.empty()) return "the top level";
  std::string s;
  for (std::size_t i = 0; i < path.size() && i < 4; ++i)
    s += (i ? "." : "") + (path[i] == "[]" ? path[i] : "'" + path[i] + "'");
  return path.size() > 4 ? s + "... (" + std::to_string(path.size()) + " steps)" : s;
}

}  // namespace pdiff
