// pdiff/core/copy_ops.hpp — copies that rearrange tensors, one code for every backend: each is a
// handful of strided row copies (memory<B>::copy_2d: memcpy rows on the CPU, cudaMemcpy2DAsync on
// CUDA), so no kernel is needed and any element type works.
//
// | op                            | result                                                      |
// |-------------------------------|-------------------------------------------------------------|
// | narrow(x, dim, begin, n)      | elements [begin, begin+n) of dimension dim (a copy)         |
// | narrow_assign(dst, dim, b, x) | dst's elements [b, b + x.size(dim)) of dimension dim ← x    |
// | cat(xs, dim), cat(a, b, dim)  | concatenation along dim; other dimensions must agree        |
// | repeat_heads(k, hq)           | (B, S, Hkv, D) → (B, S, Hq, D): kv head h/(Hq/Hkv) for head h |
// | detail::block_pack/unpack     | (outer, n, inner) ↔ (P, outer, n/P·inner): collective blocks |
#pragma once

#include <span>
#include <vector>

#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
// Outer (product of dims before d), extent of d, inner (product after d).
struct Split3 {
  std::int64_t outer = 1, n = 1, inner = 1;
};
inline Split3 split3(const Shape& s, int d) {
  Split3 r;
  d = s.norm(d);
  for (int i = 0; i < d; ++i) r.outer *= s.dims[i];
  r.n = s.dims[d];
  for (int i = d + 1; i < s.rank; ++i) r.inner *= s.dims[i];
  return r;
}

// rows × width elements, rows dst_pitch / src_pitch elements apart.
template <class B, class T>
void copy_rows(T* dst, std::int64_t dst_pitch, const T* src, std::int64_t src_pitch, std::int64_t width,
               std::int64_t rows) {
  if (width <= 0 || rows <= 0) return;
  memory<B>::copy_2d(dst, std::size_t(dst_pitch) * sizeof(T), src, std::size_t(src_pitch) * sizeof(T),
                     std::size_t(width) * sizeof(T), std::size_t(rows));
}

// blocks (P, outer, n/P·inner) ← x (outer, n, inner): block p holds x's slice p along the dimension.
template <class B, class T>
void block_pack(const T* x, T* blocks, Split3 s, int parts) {
  const std::int64_t chunk = s.n / parts * s.inner;
  for (int p = 0; p < parts; ++p)
    copy_rows<B>(blocks + std::int64_t(p) * s.outer * chunk, chunk, x + p * chunk, s.n * s.inner, chunk, s.outer);
}
// x (outer, n, inner) ← blocks (P, outer, n/P·inner): the inverse of block_pack.
template <class B, class T>
void block_unpack(const T* blocks, T* x, Split3 s, int parts) {
  const std::int64_t chunk = s.n / parts * s.inner;
  for (int p = 0; p < parts; ++p)
    copy_rows<B>(x + p * chunk, s.n * s.inner, blocks + std::int64_t(p) * s.outer * chunk, chunk, chunk, s.outer);
}
}  // namespace detail

template <class T, class B>
Tensor<T, B> narrow(const Tensor<T, B>& x, int dim, std::int64_t begin, std::int64_t n) {
  Shape s = x.shape();
  dim = s.norm(dim);
  PDIFF_CHECK(begin >= 0 && n >= 0 && begin + n <= s.dims[dim], "narrow: [", begin, ", ", begin + n,
              ") out of range for dimension ", dim, " of ", s);
  const auto sp = detail::split3(s, dim);
  s.dims[dim] = n;
  Tensor<T, B> o(s);
  detail::copy_rows<B>(o.data(), n * sp.inner, x.data() + begin * sp.inner, sp.n * sp.inner, n * sp.inner, sp.outer);
  return o;
}

// The inverse of narrow: x goes into dst's slice [begin, begin + x.size(dim)) of dimension dim (a part of a
// packed buffer written in place instead of a cat of parts); the other dimensions must agree.
template <class T, class B>
void narrow_assign(Tensor<T, B>& dst, int dim, std::int64_t begin, const Tensor<T, B>& x) {
  const Shape& s = dst.shape();
  PDIFF_CHECK(x.rank() == s.rank, "narrow_assign: x", x.shape(), " and dst", s, " differ in rank");
  dim = s.norm(dim);
  for (int i = 0; i < s.rank; ++i)
    PDIFF_CHECK(i == dim || x.size(i) == s.dims[i], "narrow_assign: x", x.shape(), " and dst", s,
                " differ outside dimension ", dim);
  const std::int64_t n = x.size(dim);
  PDIFF_CHECK(begin >= 0 && begin + n <= s.dims[dim], "narrow_assign: [", begin, ", ", begin + n,
              ") out of range for dimension ", dim, " of ", s);
  const auto sp = detail::split3(s, dim);
  detail::copy_rows<B>(dst.data() + begin * sp.inner, sp.n * sp.inner, x.data(), n * sp.inner, n * sp.inner, sp.outer);
}

template <class T, class B>
Tensor<T, B> cat(std::span<const Tensor<T, B>* const> xs, int dim) {
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
  const auto sp = detail::split3(s, dim);
  s.dims[dim] = total;
  Tensor<T, B> o(s);
  std::int64_t at = 0;
  for (auto* x : xs) {
    const std::int64_t n = x->size(dim);
    detail::copy_rows<B>(o.data() + at * sp.inner, total * sp.inner, x->data(), n * sp.inner, n * sp.inner, sp.outer);
    at += n;
  }
  return o;
}

template <class T, class B>
Tensor<T, B> cat(const Tensor<T, B>& a, const Tensor<T, B>& b, int dim) {
  const Tensor<T, B>* xs[] = {&a, &b};
  return cat<T, B>(xs, dim);
}

// Repeats each kv head Hq/Hkv times: (B, S, Hkv, D) → (B, S, Hq, D) (GQA before a head split).
template <class T, class B>
Tensor<T, B> repeat_heads(const Tensor<T, B>& k, std::int64_t hq) {
  PDIFF_CHECK(k.rank() == 4, "repeat_heads: k", k.shape(), " must be (B, S, H, D)");
  const std::int64_t rows = k.size(0) * k.size(1), hk = k.size(2), D = k.size(3);
  PDIFF_CHECK(hk > 0 && hq % hk == 0, "repeat_heads: ", hq, " heads are not a multiple of ", hk, " kv heads");
  const std::int64_t rep = hq / hk;
  Tensor<T, B> o({k.size(0), k.size(1), hq, D});
  for (std::int64_t h = 0; h < hq; ++h) detail::copy_rows<B>(o.data() + h * D, hq * D, k.data() + (h / rep) * D, hk * D, D, rows);
  return o;
}

}  // namespace pdiff
