// pdiff/io/config.hpp — JsonConfig: typed, checked access to a config.json (or one of its objects).
//
// | call                        | missing key           | wrong type                         |
// |-----------------------------|-----------------------|------------------------------------|
// | get<T>("hidden_size")       | Error naming file/key | Error naming file/key and the type |
// | get_or<T>("eps", 1e-6)      | the default           | Error                              |
// | sub("text_config")          | Error                 | Error unless an object             |
// | has("key"), is_null("key")  |                       |                                    |
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "pdiff/core/error.hpp"

namespace pdiff {

class JsonConfig {
 public:
  JsonConfig() = default;
  JsonConfig(nlohmann::json j, std::string where) : j_(std::move(j)), where_(std::move(where)) {}

  static JsonConfig load(const std::filesystem::path& file) {
    std::ifstream in(file);
    PDIFF_CHECK(in, "config: cannot read '", file.string(), "'");
    try {
      return JsonConfig(nlohmann::json::parse(in), file.string());
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::cat("config: '", file.string(), "' is not valid JSON: ", e.what()));
    }
  }
  static JsonConfig parse(std::string_view text, std::string where = "<json>") {
    try {
      return JsonConfig(nlohmann::json::parse(text), std::move(where));
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::cat("config: ", where, " is not valid JSON: ", e.what()));
    }
  }

  bool has(const std::string& k) const { return j_.is_object() && j_.contains(k); }
  bool is_null(const std::string& k) const { return !has(k) || j_.at(k).is_null(); }
  const std::string& where() const { return where_; }
  const nlohmann::json& json() const { return j_; }

  template <class T>
  T get(const std::string& k) const {
    PDIFF_CHECK(has(k) && !j_.at(k).is_null(), "config ", where_, ": missing '", k, "'");
    try {
      return j_.at(k).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw Error(detail::cat("config ", where_, ": '", k, "' has the wrong type (", j_.at(k).type_name(), ")"));
    }
  }
  template <class T>
  T get_or(const std::string& k, T fallback) const {
    return is_null(k) ? fallback : get<T>(k);
  }
  JsonConfig sub(const std::string& k) const {
    PDIFF_CHECK(has(k) && j_.at(k).is_object(), "config ", where_, ": '", k, "' must be an object");
    return JsonConfig(j_.at(k), where_ + "." + k);
  }

 private:
  nlohmann::json j_;
  std::string where_;
};

}  // namespace pdiff
