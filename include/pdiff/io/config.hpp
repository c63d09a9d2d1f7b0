// pdiff/io/config.hpp — JsonConfig: typed, checked access to a config.json (or one of its objects).
//
// | call                        | missing key           | wrong type                         |
// |-----------------------------|-----------------------|------------------------------------|
// | get<T>("hidden_size")       | Error naming file/key | Error naming file/key and the type |
// | get_or<T>("eps", 1e-6)      | the default           | Error                              |
// | sub("text_config")          | Error                 | Error unless an object             |
// | has("key"), is_null("key")  |                       |                                    |
// Integer fields (and arrays of them) take JSON integers, or floats with an integral value (32.0), in
// the range of the C++ type: 1.5, 1e300 or 1e10 for an int is an Error, never a converted value (which
// would be undefined behaviour). Files are checked by json_guard first (nesting ≤ 127, no NUL byte), and a
// JsonConfig shares its document: sub() and copies never copy the tree (copying recurses).
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/json_guard.hpp"

namespace pdiff {

namespace detail {
template <class T>
inline constexpr bool json_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <class T>
struct json_int_vector : std::false_type {};
template <class T>
struct json_int_vector<std::vector<T>> : std::bool_constant<json_int_v<T>> {};

// v as the integer type T, or an Error naming `what` when v is not an integral number in T's range.
template <class T>
T json_to_int(const nlohmann::json& v, const std::string& what) {
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    const auto x = v.get<std::uint64_t>();
    PDIFF_CHECK(x <= std::uint64_t(L::max()), what, " is ", x, ", above the largest value of its type (", L::max(), ")");
    return T(x);
  }
  if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    PDIFF_CHECK(x >= std::int64_t(L::min()) && (x < 0 || std::uint64_t(x) <= std::uint64_t(L::max())), what, " is ", x,
                ", outside the range of its type [", std::int64_t(L::min()), ", ", L::max(), "]");
    return T(x);
  }
  PDIFF_CHECK(v.is_number_float(), what, " must be an integer, not ", v.type_name());
  const double x = v.get<double>();
  // 2^63 and 2^64 are exact doubles: compare against them, not against max() which rounds up
  const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
  PDIFF_CHECK(std::isfinite(x) && x == std::floor(x) && x >= double(L::min()) && x < hi, what, " is ", v.dump(),
              ", not an integer in the range of its type [", std::int64_t(L::min()), ", ", L::max(), "]");
  return T(x);
}
}  // namespace detail

class JsonConfig {
 public:
  JsonConfig() = default;
  JsonConfig(nlohmann::json j, std::string where)
      : doc_(std::make_shared<const nlohmann::json>(std::move(j))), node_(doc_.get()), where_(std::move(where)) {}

  static JsonConfig load(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    PDIFF_CHECK(in, "config: cannot read '", file.string(), "'");
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), file.string());
  }
  static JsonConfig parse(std::string_view text, std::string where = "<json>") {
    if (auto fault = json_guard(text))
      throw Error(detail::cat("config: '", where, "' is refused: in ", json_path(fault->path), ", ", fault->message));
    try {
      return JsonConfig(nlohmann::json::parse(text), std::move(where));
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::cat("config: '", where, "' is not valid JSON: ", e.what()));
    }
  }

  bool has(const std::string& k) const { return node_ && node_->is_object() && node_->contains(k); }
  bool is_null(const std::string& k) const { return !has(k) || node_->at(k).is_null(); }
  const std::string& where() const { return where_; }
  const nlohmann::json& json() const {
    static const nlohmann::json none;
    return node_ ? *node_ : none;
  }

  template <class T>
  T get(const std::string& k) const {
    PDIFF_CHECK(has(k) && !node_->at(k).is_null(), "config ", where_, ": missing '", k, "'");
    const nlohmann::json& v = node_->at(k);
    const std::string what = detail::cat("config ", where_, ": '", k, "'");
    if constexpr (detail::json_int_v<T>) {
      return detail::json_to_int<T>(v, what);
    } else if constexpr (detail::json_int_vector<T>::value) {
      PDIFF_CHECK(v.is_array(), what, " must be an array of integers, not ", v.type_name());
      T out;
      for (std::size_t i = 0; i < v.size(); ++i)
        out.push_back(detail::json_to_int<typename T::value_type>(v[i], detail::cat(what, "[", i, "]")));
      return out;
    } else {
      try {
        return v.get<T>();
      } catch (const nlohmann::json::exception&) {
        throw Error(detail::cat(what, " has the wrong type (", v.type_name(), ")"));
      }
    }
  }
  template <class T>
  T get_or(const std::string& k, T fallback) const {
    return is_null(k) ? fallback : get<T>(k);
  }
  JsonConfig sub(const std::string& k) const {
    PDIFF_CHECK(has(k) && node_->at(k).is_object(), "config ", where_, ": '", k, "' must be an object");
    JsonConfig c;
    c.doc_ = doc_;
    c.node_ = &node_->at(k);
    c.where_ = where_ + "." + k;
    return c;
  }

 private:
  std::shared_ptr<const nlohmann::json> doc_;  // the whole file, shared by every sub()
  const nlohmann::json* node_ = nullptr;       // this object inside it
  std::string where_;
};

}  // namespace pdiff
