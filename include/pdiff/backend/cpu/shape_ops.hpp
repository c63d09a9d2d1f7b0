// pdiff/backend/cpu/shape_ops.hpp — copies that rearrange CPU tensors.
//
// | op                        | result                                                  |
// |---------------------------|---------------------------------------------------------|
// | narrow(x, dim, begin, n)  | elements [begin, begin+n) of dimension dim (a copy)     |
// | cat(xs, dim)              | concatenation along dim; other dimensions must agree    |
#pragma once

#include <algorithm>

#include <span>
#include <vector>

#include "pdiff/backend/cpu/memory.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

template <class T>
Tensor<T, OnCpu> narrow(const Tensor<T, OnCpu>& x, int dim, std::int64_t begin, std::int64_t n) {
  Shape s = x.shape();
  dim = s.norm(dim);
  PDIFF_CHECK(begin >= 0 && n >= 0 && begin + n <= s.dims[dim], "narrow: [", begin, ", ", begin + n,
              ") out of range for dimension ", dim, " of ", s);
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= s.dims[i];
  for (int i = dim + 1; i < s.rank; ++i) inner *= s.dims[i];
  const std::int64_t full = s.dims[dim];
  s.dims[dim] = n;
  Tensor<T, OnCpu> o(s);
  for (std::int64_t a = 0; a < outer; ++a)
    std::copy_n(x.data() + (a * full + begin) * inner, n * inner, o.data() + a * n * inner);
  return o;
}

template <class T>
Tensor<T, OnCpu> cat(std::span<const Tensor<T, OnCpu>* const> xs, int dim) {
  PDIFF_CHECK(!xs.empty(), "cat: nothing to concatenate");
  Shape s = xs[0]->shape();
  dim = s.norm(dim);
  std::int64_t total = 0;
  for (auto* x : xs) {
    PDIFF_CHECK(x->rank() == s.rank, "cat: ranks differ: ", s, " and ", x->shape());
    for (int i = 0; i < s.rank; ++i)
      PDIFF_CHECK(i == dim || x->size(i) == s.dims[i], "cat: ", s, " and ", x->shape(), " differ outside dimension ",
                  dim);
    total += x->size(dim);
  }
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < dim; ++i) outer *= s.dims[i];
  for (int i = dim + 1; i < s.rank; ++i) inner *= s.dims[i];
  s.dims[dim] = total;
  Tensor<T, OnCpu> o(s);
  std::int64_t at = 0;
  for (auto* x : xs) {
    const std::int64_t n = x->size(dim);
    for (std::int64_t a = 0; a < outer; ++a)
      std::copy_n(x->data() + a * n * inner, n * inner, o.data() + (a * total + at) * inner);
    at += n;
  }
  return o;
}

template <class T>
Tensor<T, OnCpu> cat(const Tensor<T, OnCpu>& a, const Tensor<T, OnCpu>& b, int dim) {
  const Tensor<T, OnCpu>* xs[] = {&a, &b};
  return cat<T>(xs, dim);
}

}  // namespace pdiff
