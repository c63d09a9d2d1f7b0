// pdiff/core/shape.hpp — a row-major shape of rank 0..5 with run-time extents.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

#include "pdiff/core/error.hpp"

namespace pdiff {

struct Shape {
  static constexpr int max_rank = 5;
  std::array<std::int64_t, max_rank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> d) {
    PDIFF_CHECK(int(d.size()) <= max_rank, "Shape: rank ", d.size(), " exceeds the maximum of ", max_rank);
    for (auto v : d) {
      PDIFF_CHECK(v >= 0, "Shape: extent ", v, " is negative");
      dims[rank++] = v;
    }
  }
  template <class It>
  static Shape from(It first, It last) {
    Shape s;
    for (; first != last; ++first) {
      PDIFF_CHECK(s.rank < max_rank, "Shape: rank exceeds the maximum of ", max_rank);
      PDIFF_CHECK(*first >= 0, "Shape: extent ", *first, " is negative");
      s.dims[s.rank++] = std::int64_t(*first);
    }
    return s;
  }

  // The element count; a product beyond int64 is an error, not a wrapped size (a 2^34 x 2^34 image
  // once wrapped to 0 and allocated nothing).
  std::int64_t numel() const { return product(0); }
  // Negative indices count from the back, like Python.
  std::int64_t operator[](int i) const { return dims[norm(i)]; }
  std::int64_t& operator[](int i) { return dims[norm(i)]; }
  int norm(int i) const {
    int j = i < 0 ? i + rank : i;
    PDIFF_CHECK(j >= 0 && j < rank, "Shape: dimension ", i, " out of range for rank ", rank);
    return j;
  }
  // Elements between consecutive indices of dimension i (row-major).
  std::int64_t stride(int i) const { return product(norm(i) + 1); }
  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  std::string str() const {
    std::string s = "(";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + ")";
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

 private:
  // dims[from] · … · dims[rank − 1]; 0 when any of them is 0, even if the others overflow.
  std::int64_t product(int from) const {
    for (int i = from; i < rank; ++i)
      if (dims[i] == 0) return 0;
    std::int64_t n = 1;
    for (int i = from; i < rank; ++i)
      PDIFF_CHECK(!__builtin_mul_overflow(n, dims[i], &n), "Shape ", str(), ": the element count overflows int64");
    return n;
  }
};

}  // namespace pdiff
