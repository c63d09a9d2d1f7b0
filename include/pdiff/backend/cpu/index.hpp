// pdiff/backend/cpu/index.hpp — row gather and weighted scatter-add, the token permutation of MoE
// layers (tokens grouped by expert and back).
//
// | op                                  | shapes                                              | result                      |
// |-------------------------------------|-----------------------------------------------------|-----------------------------|
// | index_rows(x, idx)                  | x (N, D), idx (n) int32 in [0, N)                   | (n, D): row i = x[idx[i]]   |
// | index_add_rows(out, rows, idx, w)   | out (N, D), rows (n, D), idx (n), w (n) fp32        | out[idx[i]] += w[i]·rows[i], in place, in order of i |
// Indices out of range are a clear error (checked on the host before any write). bf16: each add is rounded
// here; the CUDA op sums a destination's rows in fp32 and rounds once (fp32: the same order, the same sums).
#pragma once

#include <algorithm>
#include <cstdint>

#include "pdiff/core/error.hpp"
#include "pdiff/core/tensor.hpp"

namespace pdiff {

namespace detail {
template <class T, class B>
void check_index(const char* op, const Tensor<T, B>& x, const Tensor<std::int32_t, OnCpu>& idx) {
  PDIFF_CHECK(x.rank() == 2 && idx.rank() == 1, op, ": x", x.shape(), " must be (N, D) and idx", idx.shape(), " (n)");
  for (std::int64_t i = 0; i < idx.numel(); ++i)
    PDIFF_CHECK(idx(i) >= 0 && idx(i) < x.size(0), op, ": index ", idx(i), " at ", i, " is outside [0, ", x.size(0),
                ")");
}
}  // namespace detail

template <class T>
Tensor<T, OnCpu> index_rows(const Tensor<T, OnCpu>& x, const Tensor<std::int32_t, OnCpu>& idx) {
  detail::check_index("index_rows", x, idx);
  const std::int64_t n = idx.numel(), D = x.size(1);
  Tensor<T, OnCpu> out({n, D});
  for (std::int64_t i = 0; i < n; ++i) std::copy_n(x.data() + std::int64_t(idx(i)) * D, D, out.data() + i * D);
  return out;
}

template <class T>
void index_add_rows(Tensor<T, OnCpu>& out, const Tensor<T, OnCpu>& rows, const Tensor<std::int32_t, OnCpu>& idx,
                    const Tensor<float, OnCpu>& w) {
  detail::check_index("index_add_rows", out, idx);
  const std::int64_t n = idx.numel(), D = out.size(1);
  PDIFF_CHECK(rows.rank() == 2 && rows.size(0) == n && rows.size(1) == D && w.numel() == n, "index_add_rows: rows",
              rows.shape(), " and weights", w.shape(), " must be (", n, ", ", D, ") and (", n, ")");
  for (std::int64_t i = 0; i < n; ++i) {
    T* o = out.data() + std::int64_t(idx(i)) * D;
    const T* r = rows.data() + i * D;
    const float wi = w(i);
    for (std::int64_t d = 0; d < D; ++d) o[d] = T(float(o[d]) + wi * float(r[d]));
  }
}

}  // namespace pdiff
