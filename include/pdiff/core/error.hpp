// pdiff/core/error.hpp — the one exception type of pdiff and the PDIFF_CHECK macro.
//
// Messages start with the thing at fault and state the rule (STYLE.md §7), e.g.
//   "Tensor::view: numel of (2, 3) is 6, of (4, 2) is 8; a view keeps the element count"
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace pdiff {

// Every error pdiff reports on purpose is a pdiff::Error.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
// Concatenates its arguments with operator<< (g++ 12 has no std::format).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace pdiff

// Throws pdiff::Error with the concatenated message when `cond` is false.
#define PDIFF_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) throw ::pdiff::Error(::pdiff::detail::cat(__VA_ARGS__)); \
  } while (0)
