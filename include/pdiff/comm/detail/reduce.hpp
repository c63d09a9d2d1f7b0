// pdiff/comm/detail/reduce.hpp — element-wise reduction of host buffers in a fixed rank order, so
// every rank computes bit-identical results (bf16/f16 reduced in float).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "pdiff/comm/communicator.hpp"
#include "pdiff/core/dtype.hpp"

namespace pdiff::detail {

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <class T>
using acc_t = std::conditional_t<is_half_v<T>, float, T>;

// out[i] = src[0][offset + i] ⊕ src[1][offset + i] ⊕ ... in source order; bf16/f16 accumulate in
// float and round once. Tiles of 1024 keep the accumulators in L1 and let the per-source loops
// vectorize; the order of operations per element is the same as an element-by-element loop, so the
// result is bit-identical wherever it is computed. `out` may alias any source at the same indices.
template <class T>
void reduce_into(T* out, const T* const* src, int nsrc, std::size_t offset, std::size_t n, ReduceOp op) {
  auto widen = [](T v) -> acc_t<T> {
    if constexpr (is_half_v<T>) return float(v);
    else return v;
  };
  constexpr std::size_t tile = 1024;
  acc_t<T> acc[tile];
  for (std::size_t lo = 0; lo < n; lo += tile) {
    const std::size_t m = std::min(tile, n - lo);
    const T* s0 = src[0] + offset + lo;
    for (std::size_t i = 0; i < m; ++i) acc[i] = widen(s0[i]);
    for (int k = 1; k < nsrc; ++k) {
      const T* s = src[k] + offset + lo;
      if (op == ReduceOp::sum)
        for (std::size_t i = 0; i < m; ++i) acc[i] = acc_t<T>(acc[i] + widen(s[i]));
      else
        for (std::size_t i = 0; i < m; ++i) acc[i] = std::max(acc[i], widen(s[i]));
    }
    for (std::size_t i = 0; i < m; ++i) {
      if constexpr (is_half_v<T>) out[lo + i] = T(acc[i]);
      else out[lo + i] = acc[i];
    }
  }
}

// Logical bytes sent to other ranks, as communicator.hpp defines them.
inline std::uint64_t ring_all_reduce_bytes(std::size_t n, std::size_t elem, int size) {
  return size <= 1 ? 0 : std::uint64_t(2) * std::uint64_t(size - 1) * n * elem / std::uint64_t(size);
}

}  // namespace pdiff::detail
